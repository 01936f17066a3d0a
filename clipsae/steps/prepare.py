"""Step ``prepare_dataset``: a dataset entry to its image index."""

from __future__ import annotations

from pathlib import Path

from clipsae.data import build_dataset, dataset_source_spec, write_index


def prepare(name: str, entry: dict, out_dir: Path) -> None:
    write_index(build_dataset(name, dataset_source_spec(entry)), Path(out_dir))
