"""What several steps share: reading one split of a prepared dataset."""

from __future__ import annotations

from pathlib import Path

from clipsae.config.validate import dataset_source_spec
from clipsae.data import ImageDataset, Record, build_dataset, read_index


def split_records(
    name: str, entry: dict, index_dir: Path, split: str
) -> tuple[ImageDataset, list[Record]]:
    dataset = build_dataset(name, dataset_source_spec(entry))
    records, _ = read_index(Path(index_dir))
    chosen = [r for r in records if r.split == split]
    if not chosen:
        raise ValueError(f"dataset {name!r} has no images in split {split!r}")
    return dataset, chosen
