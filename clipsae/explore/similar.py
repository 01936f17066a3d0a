"""Images whose SAE codes are nearest to a query's (cosine), streamed over a split's shards."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from clipsae.explore.run import encode
from clipsae.sae import SAE


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def nearest_by_code(
    sae: SAE, query: np.ndarray, batches: Iterable[np.ndarray], *, top_n: int = 10
) -> pl.DataFrame:
    """The ``top_n`` rows of ``batches`` (activations, in store order) whose codes have the
    highest cosine to the codes of the ``query`` activation: ``row, cosine``, best first.

    Codes, not activations: two images are near here when the same latents explain them, which
    is what a user comparing images through the SAE asks about. Only ``top_n`` candidates are
    kept besides the current batch.
    """
    target = _unit(encode(sae, np.asarray(query, dtype=np.float32).reshape(1, -1))[0])
    best_rows = np.empty(0, dtype=np.int64)
    best_cos = np.empty(0, dtype=np.float32)
    offset = 0
    for batch in batches:
        cosine = _unit(encode(sae, batch)) @ target
        rows = np.concatenate([best_rows, np.arange(offset, offset + len(batch))])
        values = np.concatenate([best_cos, cosine])
        keep = np.argsort(-values, kind="stable")[:top_n]
        best_rows, best_cos = rows[keep], values[keep]
        offset += len(batch)
    if offset == 0:
        raise ValueError("no rows to compare the query with")
    return pl.DataFrame({"row": best_rows, "cosine": best_cos})
