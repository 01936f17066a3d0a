"""Image dataset sources behind one interface (see ``base``); importing registers every source."""

from clipsae.datasets import hf, imagefolder, synthetic, torchvision_sources
from clipsae.datasets.base import (
    ImageDataset,
    Record,
    build_dataset,
    register,
    stratified_test_mask,
)
from clipsae.datasets.index import read_classes, read_index, records_frame, write_index
from clipsae.datasets.synthetic import SyntheticSpec, caption, render, sample_attributes
from clipsae.images import BadImage, ImagePolicy, load_rgb

__all__ = [
    "BadImage",
    "ImageDataset",
    "ImagePolicy",
    "Record",
    "SyntheticSpec",
    "build_dataset",
    "caption",
    "hf",
    "imagefolder",
    "load_rgb",
    "read_classes",
    "read_index",
    "records_frame",
    "register",
    "render",
    "sample_attributes",
    "stratified_test_mask",
    "synthetic",
    "torchvision_sources",
    "write_index",
]
