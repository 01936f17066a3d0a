"""Step ``prepare_dataset``: a dataset entry to its image index."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import polars as pl

from clipsae.data import build_dataset, dataset_source_spec, write_index

log = logging.getLogger(__name__)


def prepare(*, name: str, entry: dict, out_dir: Path) -> Path:
    """Write ``index.parquet`` and ``classes.json``; ``entry`` may carry workflow keys
    (``templates``), which the source does not see. Returns the index path."""
    dataset = build_dataset(name, dataset_source_spec(entry))
    path = write_index(dataset, Path(out_dir))
    splits = Counter(pl.read_parquet(path, columns=["split"])["split"].to_list())
    log.info(
        "%s: %d images (%s), %d classes -> %s",
        name,
        splits.total(),
        ", ".join(f"{k} {v}" for k, v in sorted(splits.items())),
        len(dataset.class_names),
        path,
    )
    return path
