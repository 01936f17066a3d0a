"""Latents of one image (``explain``) and latents of a text (``search``)."""

from __future__ import annotations

import numpy as np
import polars as pl

from clipsae.explore.run import encode
from clipsae.sae import SAE


def with_names(frame: pl.DataFrame, names: pl.DataFrame | None) -> pl.DataFrame:
    """``frame`` (with a ``latent`` column) plus ``label_en``/``label_ru``, null where unnamed."""
    if names is None:
        return frame.with_columns(
            label_en=pl.lit(None, pl.String), label_ru=pl.lit(None, pl.String)
        )
    return frame.join(names, on="latent", how="left", maintain_order="left")


def explain(
    sae: SAE, activation: np.ndarray, *, top_n: int = 10, names: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The image's ``top_n`` most active latents (fewer if fewer fire), strongest first:
    ``latent, activation, label_en, label_ru``."""
    codes = encode(sae, np.asarray(activation, dtype=np.float32).reshape(1, -1))[0]
    order = np.argsort(-codes, kind="stable")[:top_n]
    order = order[codes[order] > 0]
    frame = pl.DataFrame({"latent": order.astype(np.int64), "activation": codes[order]})
    return with_names(frame, names)


def nearest_directions(
    query: np.ndarray,
    directions: np.ndarray,
    *,
    top_n: int = 10,
    live: np.ndarray | None = None,
) -> pl.DataFrame:
    """The ``top_n`` latents whose directions (d_sae, d) have the highest cosine to ``query`` (d,):
    ``latent, cosine``. ``live`` (a d_sae mask) leaves out latents that never fire, whose
    directions no image ever uses."""
    directions = np.asarray(directions, dtype=np.float32)
    if directions.ndim != 2 or np.shape(query) != (directions.shape[1],):
        raise ValueError(
            f"query of shape {np.shape(query)} does not match directions {directions.shape}"
        )
    norms = np.linalg.norm(directions, axis=1) * np.linalg.norm(query)
    cosine = directions @ np.asarray(query, dtype=np.float32) / np.maximum(norms, 1e-12)
    candidates = np.arange(len(directions)) if live is None else np.flatnonzero(live)
    order = candidates[np.argsort(-cosine[candidates], kind="stable")[:top_n]]
    return pl.DataFrame({"latent": order.astype(np.int64), "cosine": cosine[order]})


def top_rows(top: pl.DataFrame, latent: int, n: int) -> pl.DataFrame:
    """The ``n`` best rows of ``latent`` in a top-images table: ``row, activation``."""
    rows = top.filter(pl.col("latent") == latent).sort("rank").head(n)
    return rows.select("row", "activation")
