"""Image dataset sources behind one interface (see ``base``); importing registers every source."""

from clipsae.data import hf, idx, imagefolder, synthetic, torchvision_sources
from clipsae.data.base import (
    ImageDataset,
    Record,
    build_dataset,
    dataset_source_spec,
    register,
    stratified_test_mask,
)
from clipsae.data.images import BadImage, ImagePolicy, load_rgb
from clipsae.data.index import read_classes, read_index, records_frame, write_index
from clipsae.data.synthetic import SyntheticSpec, caption, render, sample_attributes

__all__ = [
    "BadImage",
    "ImageDataset",
    "ImagePolicy",
    "Record",
    "SyntheticSpec",
    "build_dataset",
    "caption",
    "dataset_source_spec",
    "hf",
    "idx",
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
