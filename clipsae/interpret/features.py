"""Per-latent statistics and top-activating rows, computed in one streaming pass.

The codes of a whole dataset (rows x d_sae) rarely fit in memory, so everything here is a running
reduction: counts and sums for the statistics, and a running top-k per latent that is merged with
each batch's own top-k. Only ``d_sae x top_k`` values are ever held besides the current batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from tqdm import tqdm

from clipsae.runtime.atomic import atomic_output

Encoder = Callable[[torch.Tensor], torch.Tensor]

STATS_FILE = "stats.parquet"
TOP_FILE = "top_images.parquet"


@dataclass
class _Running:
    """Running reductions over the rows seen so far, one entry per latent."""

    fire_count: torch.Tensor  # (d_sae,) int64
    total: torch.Tensor  # (d_sae,) float64, sum of codes
    maximum: torch.Tensor  # (d_sae,) float32; codes are non-negative, so 0 is a valid start
    top_values: torch.Tensor  # (d_sae, <=top_k) float32, sorted descending
    top_rows: torch.Tensor  # (d_sae, <=top_k) int64, global row indices
    n_rows: int = 0

    @classmethod
    def empty(cls, d_sae: int, device: torch.device) -> _Running:
        return cls(
            fire_count=torch.zeros(d_sae, dtype=torch.int64, device=device),
            total=torch.zeros(d_sae, dtype=torch.float64, device=device),
            maximum=torch.zeros(d_sae, dtype=torch.float32, device=device),
            top_values=torch.empty(d_sae, 0, dtype=torch.float32, device=device),
            top_rows=torch.empty(d_sae, 0, dtype=torch.int64, device=device),
        )

    def update(self, codes: torch.Tensor, top_k: int) -> None:
        """Fold one batch of codes (B, d_sae) into the statistics and the running top-k."""
        if len(codes) == 0:
            return
        self.fire_count += (codes > 0).sum(dim=0)
        self.total += codes.sum(dim=0, dtype=torch.float64)
        self.maximum = torch.maximum(self.maximum, codes.max(dim=0).values)
        batch_values, batch_idx = codes.topk(min(top_k, len(codes)), dim=0)
        values = torch.cat([self.top_values, batch_values.T], dim=1)
        rows = torch.cat([self.top_rows, batch_idx.T + self.n_rows], dim=1)
        self.top_values, keep = values.topk(min(top_k, values.shape[1]), dim=1)
        self.top_rows = rows.gather(1, keep)
        self.n_rows += len(codes)


def _encode_batch(
    encode: Encoder, batch: np.ndarray, d_sae: int, device: torch.device
) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(batch, dtype=np.float32), device=device)
    codes = encode(x)
    if codes.shape != (len(x), d_sae):
        raise ValueError(f"encode returned shape {tuple(codes.shape)}, expected {(len(x), d_sae)}")
    return codes.float()


def latent_stats_and_top(
    encode: Encoder,
    batches: Iterable[np.ndarray],
    d_sae: int,
    top_k: int,
    device: str | torch.device | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return per-latent statistics and the ``top_k`` highest-activating rows of every latent.

    ``encode`` must map a float32 tensor (B, d_in) on ``device`` (default CPU) to non-negative codes
    (B, d_sae). Rows are numbered globally in stream order, so ``row`` indexes the activation store
    the batches came from. Ties between equal activations are broken arbitrarily by ``torch.topk``.
    Only rows with a positive activation enter the top table, so a latent that fires on three rows
    has three top rows, and a dead latent has none.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    device = torch.device(device or "cpu")
    running = _Running.empty(d_sae, device)
    with torch.inference_mode():
        for batch in tqdm(batches, desc="encoding features", unit="batch"):
            running.update(_encode_batch(encode, batch, d_sae, device), top_k)
    if running.n_rows == 0:
        raise ValueError("latent_stats_and_top got no rows: the batch stream was empty")
    return _stats_frame(running), _top_frame(running)


def _stats_frame(running: _Running) -> pl.DataFrame:
    fire = running.fire_count.cpu().numpy()
    total = running.total.cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        when_active = np.where(fire > 0, total / fire, np.nan)
    return pl.DataFrame(
        {
            "latent": np.arange(len(fire), dtype=np.int64),
            "frequency": fire / running.n_rows,
            "fire_count": fire,
            "mean_activation": total / running.n_rows,
            # Undefined for a latent that never fires: null, not a misleading 0.
            "mean_when_active": pl.Series(when_active, nan_to_null=True),
            "max_activation": running.maximum.cpu().numpy().astype(np.float64),
        }
    )


def _top_frame(running: _Running) -> pl.DataFrame:
    values = running.top_values.cpu().numpy()
    rows = running.top_rows.cpu().numpy()
    d_sae, k = values.shape
    latent, rank = np.meshgrid(np.arange(d_sae), np.arange(k), indexing="ij")
    positive = values > 0
    return pl.DataFrame(
        {
            "latent": latent[positive].astype(np.int64),
            "rank": rank[positive].astype(np.int64),
            "row": rows[positive],
            "activation": values[positive],
        }
    )


def write_features(stats: pl.DataFrame, top: pl.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    """Write ``stats.parquet`` and ``top_images.parquet`` into ``out_dir`` atomically."""
    paths = (Path(out_dir) / STATS_FILE, Path(out_dir) / TOP_FILE)
    for frame, path in zip((stats, top), paths, strict=True):
        with atomic_output(path) as tmp:
            frame.write_parquet(tmp)
    return paths
