"""Which image each activation row is: the ``index.parquet`` beside an extraction's shards.

Extraction skips bad images, so row r is not the r-th record of the split; every reader maps
rows to images (ids, labels) through this file. It lives apart from the extraction code so that
readers do not import the model stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from clipsae.data import Record

ROW_INDEX_FILE = "index.parquet"


def write_row_index(records: Sequence[Record], positions: Sequence[int], path: Path) -> None:
    """Row r of the shards is ``records[positions[r]]``."""
    pl.DataFrame(
        {
            "row": np.arange(len(positions), dtype=np.int64),
            "id": [records[p].id for p in positions],
            "label": np.array([records[p].label for p in positions], dtype=np.int64),
        }
    ).write_parquet(path)


def read_row_ids(activation_dir: Path) -> list[str]:
    """Image ids aligned with the activation rows of an extraction."""
    return pl.read_parquet(Path(activation_dir) / ROW_INDEX_FILE)["id"].to_list()


def read_row_labels(activation_dir: Path) -> np.ndarray:
    """Labels aligned with the activation rows of an extraction."""
    return pl.read_parquet(Path(activation_dir) / ROW_INDEX_FILE)["label"].to_numpy()
