"""Atomic file output: a reader, or Snakemake, never sees a half-written file by its final name."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` and move it into place only if the block succeeds.

    The temporary name keeps the suffix so that writers which pick a format from it (Pillow,
    polars, NumPy) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(obj: Any, path: Path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2))
