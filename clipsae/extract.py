"""Image activations: a batched, no-grad pass of a dataset through the vision tower into shards."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from clipsae.clip import LoadedClip, VisionActivations, parse_layer
from clipsae.datasets import ImageDataset, Record
from clipsae.shards import ShardMeta, ShardWriter

log = logging.getLogger(__name__)


class _PreprocessedImages(Dataset):
    """Opens and preprocesses images in DataLoader workers; the main process runs the model."""

    def __init__(self, dataset: ImageDataset, records: Sequence[Record], preprocess: Callable):
        self.dataset, self.records, self.preprocess = dataset, list(records), preprocess

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.preprocess(self.dataset.open_image(self.records[i])), i


def iter_image_batches(
    dataset: ImageDataset,
    records: Sequence[Record],
    preprocess: Callable,
    device: torch.device,
    batch_size: int = 256,
    num_workers: int = 0,
    desc: str = "images",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (images on ``device``, positions into ``records``) in record order."""
    loader = DataLoader(
        _PreprocessedImages(dataset, records, preprocess),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    for images, positions in tqdm(loader, desc=desc, unit="batch"):
        yield images.to(device, non_blocking=True), positions


@torch.inference_mode()
def extract_activations(
    clip: LoadedClip,
    dataset: ImageDataset,
    records: Sequence[Record],
    layer: str,
    out_dir: Path,
    batch_size: int = 256,
    num_workers: int = 0,
    dtype: str = "float32",
    shard_rows: int = 65536,
    extra: dict | None = None,
) -> ShardMeta:
    """Write the ``layer`` activations of ``records`` as shards plus a row index.

    The output appears atomically: everything is written to ``<out_dir>.partial`` and renamed
    at the end, so a killed job never leaves a directory that looks finished.
    """
    if not records:
        raise ValueError(f"no images to extract into {out_dir}")
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    encoder = VisionActivations(clip.model, parse_layer(layer, clip.arch))
    writer: ShardWriter | None = None
    for images, _ in iter_image_batches(
        dataset, records, clip.preprocess, clip.device, batch_size, num_workers, desc=layer
    ):
        with torch.autocast(clip.device.type, enabled=clip.device.type == "cuda"):
            acts = encoder(images).float().cpu().numpy()
        if writer is None:
            meta_extra = {"layer": layer, "arch": clip.arch, **(extra or {})}
            writer = ShardWriter(partial, acts.shape[1], dtype, shard_rows, meta_extra)
        writer.add(acts)
    assert writer is not None
    meta = writer.close()
    _write_row_index(records, partial / "index.parquet")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(partial, out_dir)
    log.info("wrote %d x %d activations to %s", meta.n_rows, meta.d, out_dir)
    return meta


def _write_row_index(records: Sequence[Record], path: Path) -> None:
    pl.DataFrame(
        {
            "row": np.arange(len(records), dtype=np.int64),
            "id": [r.id for r in records],
            "label": np.array([r.label for r in records], dtype=np.int64),
        }
    ).write_parquet(path)


def read_row_labels(activation_dir: Path) -> np.ndarray:
    """Labels aligned with the activation rows of an extraction."""
    return pl.read_parquet(Path(activation_dir) / "index.parquet")["label"].to_numpy()
