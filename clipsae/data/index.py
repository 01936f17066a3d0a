"""``index.parquet`` + ``classes.json``: the prepared form of a dataset that later rules read.

Attributes become ordinary columns so that analyses can group by them (e.g. accuracy per shape)
with nothing but polars.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from clipsae.data.base import ImageDataset, Record
from clipsae.runtime.atomic import atomic_output

INDEX_FILE = "index.parquet"
CLASSES_FILE = "classes.json"
BASE_COLUMNS = ("id", "split", "label", "source")


def records_frame(records: list[Record]) -> pl.DataFrame:
    """One row per record; attribute columns in order of first appearance, null where absent."""
    attr_names = list(dict.fromkeys(key for r in records for key in r.attrs))
    clash = sorted(set(attr_names) & set(BASE_COLUMNS))
    if clash:
        raise ValueError(f"record attributes {clash} clash with the index columns {BASE_COLUMNS}")
    columns: dict[str, pl.Series] = {
        "id": pl.Series([r.id for r in records], dtype=pl.String),
        "split": pl.Series([r.split for r in records], dtype=pl.String),
        "label": pl.Series([r.label for r in records], dtype=pl.Int64),
        "source": pl.Series([r.source for r in records], dtype=pl.String),
    }
    for attr in attr_names:
        columns[attr] = pl.Series(attr, [r.attrs.get(attr) for r in records])
    return pl.DataFrame(columns)


def write_index(ds: ImageDataset, out_dir: Path) -> Path:
    """Write ``index.parquet`` and ``classes.json`` of ``ds`` into ``out_dir``; return its path."""
    out_dir = Path(out_dir)
    records = ds.records()
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"dataset {ds.name!r}: record ids are not unique")
    bad = sorted({r.label for r in records if not 0 <= r.label < len(ds.class_names)})
    if bad:
        raise ValueError(
            f"dataset {ds.name!r}: labels {bad[:10]} are outside its {len(ds.class_names)} classes"
        )
    with atomic_output(out_dir / CLASSES_FILE) as tmp:
        tmp.write_text(json.dumps({"classes": ds.class_names}, indent=1, ensure_ascii=False))
    with atomic_output(out_dir / INDEX_FILE) as tmp:
        records_frame(records).write_parquet(tmp)
    return out_dir / INDEX_FILE


def read_classes(directory: Path) -> list[str]:
    """Class names in label order from ``classes.json``."""
    path = Path(directory) / CLASSES_FILE
    classes = json.loads(path.read_text(encoding="utf-8")).get("classes")
    if not isinstance(classes, list):
        raise ValueError(f"{path}: expected an object with a 'classes' list")
    return classes


def read_index(directory: Path) -> tuple[list[Record], list[str]]:
    """Records and class names written by ``write_index``; null attributes are left out again."""
    path = Path(directory) / INDEX_FILE
    frame = pl.read_parquet(path)
    missing = [c for c in BASE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected at least {BASE_COLUMNS}")
    attr_names = [c for c in frame.columns if c not in BASE_COLUMNS]
    records = [
        Record(
            id=row["id"],
            split=row["split"],
            label=row["label"],
            source=row["source"],
            attrs={k: row[k] for k in attr_names if row[k] is not None},
        )
        for row in frame.iter_rows(named=True)
    ]
    return records, read_classes(directory)
