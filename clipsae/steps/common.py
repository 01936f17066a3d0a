"""What several steps share: reading one split of a prepared dataset, and its attributes per
activation row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
from PIL import Image

from clipsae.activations.row_index import ROW_INDEX_FILE, read_row_ids
from clipsae.data import ImageDataset, Record, build_dataset, dataset_source_spec, read_index
from clipsae.data.index import BASE_COLUMNS, INDEX_FILE


def split_records(
    name: str, entry: dict, index_dir: Path, split: str
) -> tuple[ImageDataset, list[Record]]:
    dataset = build_dataset(name, dataset_source_spec(entry))
    records, _ = read_index(Path(index_dir))
    chosen = [r for r in records if r.split == split]
    if not chosen:
        raise ValueError(f"dataset {name!r} has no images in split {split!r}")
    return dataset, chosen


def row_opener(
    name: str, entry: dict, index_dir: Path, acts_dir: Path, split: str = "test"
) -> Callable[[int], Image.Image]:
    """Opens the image of an activation row of ``acts_dir`` (an extraction of ``split``)."""
    dataset, records = split_records(name, entry, index_dir, split)
    by_id = {record.id: record for record in records}
    ids = read_row_ids(acts_dir)

    def open_row(row: int) -> Image.Image:
        return dataset.open_image(by_id[ids[row]])

    return open_row


def row_attributes(acts_dir: Path, index_dir: Path) -> pl.DataFrame:
    """The prepared index's columns for each activation row, in row order.

    Extraction skips bad images, so activation rows and index rows differ; they are joined on
    ``id``. A row whose id the index lacks means the two come from different preparations.
    """
    rows = pl.read_parquet(Path(acts_dir) / ROW_INDEX_FILE).select("row", "id")
    index = pl.read_parquet(Path(index_dir) / INDEX_FILE).drop("label")
    joined = rows.join(index, on="id", how="left").sort("row")
    lost = joined.filter(pl.col("split").is_null())
    if len(lost):
        raise ValueError(
            f"{acts_dir}: {len(lost)} activation rows (e.g. id {lost['id'][0]!r}) are not in "
            f"{Path(index_dir) / INDEX_FILE}: activations and index come from different datasets"
        )
    return joined


def attribute_columns(frame: pl.DataFrame) -> list[str]:
    """The string attribute columns of an index frame: the factors a generated image has."""
    skip = (*BASE_COLUMNS, "row")
    return [c for c, t in frame.schema.items() if c not in skip and t == pl.String]
