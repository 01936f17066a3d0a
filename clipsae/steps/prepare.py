"""Step ``prepare_dataset``: a dataset entry to its image index."""

from __future__ import annotations

from pathlib import Path

from clipsae.config.validate import dataset_source_spec
from clipsae.data import build_dataset, write_index


def prepare(name: str, entry: dict, out_dir: Path) -> None:
    write_index(build_dataset(name, dataset_source_spec(entry)), Path(out_dir))
