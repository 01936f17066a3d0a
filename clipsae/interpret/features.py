"""Per-latent statistics and top-activating rows, computed in one streaming pass.

The codes of a whole dataset (rows x d_sae) rarely fit in memory, so everything here is a running
reduction: counts and sums for the statistics, and a running top-k per latent that is merged with
each batch's own top-k. Only ``d_sae x top_k`` values are ever held besides the current batch.

Weakly activating rows (the contrast row of a collage: what the latent barely responds to) need
the latent's activation distribution, which one pass does not know in advance. So each latent also
keeps a uniform reservoir of its firing rows (a running top-k on random keys, ``sample_size`` per
latent); at the end, the weak rows are drawn from the part of that sample at or below the
``weak_quantile`` of its activations, leaving out the top rows.
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
WEAK_FILE = "weak_images.parquet"


@dataclass
class _Running:
    """Running reductions over the rows seen so far, one entry per latent."""

    fire_count: torch.Tensor  # (d_sae,) int64
    total: torch.Tensor  # (d_sae,) float64, sum of codes
    maximum: torch.Tensor  # (d_sae,) float32; codes are non-negative, so 0 is a valid start
    top_values: torch.Tensor  # (d_sae, <=top_k) float32, sorted descending
    top_rows: torch.Tensor  # (d_sae, <=top_k) int64, global row indices
    sample: _Reservoir | None = None
    n_rows: int = 0

    @classmethod
    def empty(cls, d_sae: int, device: torch.device, sample: _Reservoir | None) -> _Running:
        return cls(
            fire_count=torch.zeros(d_sae, dtype=torch.int64, device=device),
            total=torch.zeros(d_sae, dtype=torch.float64, device=device),
            maximum=torch.zeros(d_sae, dtype=torch.float32, device=device),
            top_values=torch.empty(d_sae, 0, dtype=torch.float32, device=device),
            top_rows=torch.empty(d_sae, 0, dtype=torch.int64, device=device),
            sample=sample,
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
        if self.sample is not None:
            self.sample.update(codes, self.n_rows)
        self.n_rows += len(codes)


@dataclass
class _Reservoir:
    """A uniform random sample of each latent's firing rows: those with the largest random keys.

    Keeping the ``size`` largest of independent uniform keys is reservoir sampling in one
    ``topk`` per batch, and a seeded generator makes the sample the same on every run.
    """

    size: int
    generator: torch.Generator
    keys: torch.Tensor  # (d_sae, <=size) float32, -1 for a non-firing filler
    rows: torch.Tensor  # (d_sae, <=size) int64
    values: torch.Tensor  # (d_sae, <=size) float32

    @classmethod
    def empty(cls, d_sae: int, size: int, seed: int, device: torch.device) -> _Reservoir:
        return cls(
            size=size,
            generator=torch.Generator(device).manual_seed(seed),
            keys=torch.empty(d_sae, 0, dtype=torch.float32, device=device),
            rows=torch.empty(d_sae, 0, dtype=torch.int64, device=device),
            values=torch.empty(d_sae, 0, dtype=torch.float32, device=device),
        )

    def update(self, codes: torch.Tensor, offset: int) -> None:
        keys = torch.rand(codes.shape, generator=self.generator, device=codes.device)
        keys = torch.where(codes > 0, keys, -1.0)  # only firing rows are ever sampled
        batch_keys, idx = keys.topk(min(self.size, len(codes)), dim=0)
        merged = torch.cat([self.keys, batch_keys.T], dim=1)
        rows = torch.cat([self.rows, idx.T + offset], dim=1)
        values = torch.cat([self.values, codes.gather(0, idx).T], dim=1)
        self.keys, keep = merged.topk(min(self.size, merged.shape[1]), dim=1)
        self.rows, self.values = rows.gather(1, keep), values.gather(1, keep)

    def weak(self, n: int, quantile: float, top_rows: torch.Tensor) -> pl.DataFrame:
        """Up to ``n`` sampled rows per latent at or below the ``quantile`` of its sampled
        activations and outside its top rows, strongest first (``rank`` 0)."""
        firing = self.keys >= 0
        threshold = torch.nanquantile(self.values.masked_fill(~firing, torch.nan), quantile, dim=1)
        in_top = (self.rows[:, :, None] == top_rows[:, None, :]).any(dim=2)
        weak = firing & (self.values <= threshold[:, None]) & ~in_top
        # The sample is uniform, so the largest keys among the weak rows are a random pick of them.
        _, pick = self.keys.masked_fill(~weak, -1.0).topk(min(n, self.keys.shape[1]), dim=1)
        chosen = weak.gather(1, pick)
        values = self.values.gather(1, pick).masked_fill(~chosen, -1.0)
        values, order = values.sort(dim=1, descending=True)
        rows = self.rows.gather(1, pick).gather(1, order)
        return _ranked_frame(values.cpu().numpy(), rows.cpu().numpy())


def _encode_batch(
    encode: Encoder, batch: np.ndarray, d_sae: int, device: torch.device
) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(batch, dtype=np.float32), device=device)
    codes = encode(x)
    if codes.shape != (len(x), d_sae):
        raise ValueError(f"encode returned shape {tuple(codes.shape)}, expected {(len(x), d_sae)}")
    return codes.float()


@dataclass(frozen=True)
class WeakSampling:
    """How the weakly activating rows of every latent are drawn (see the module docstring).

    ``n`` and ``quantile`` are the config's ``features.n_weak`` and ``weak_quantile`` (the schema
    holds their defaults; ``from_settings``); the reservoir's size and seed are internal.
    """

    n: int
    quantile: float
    sample_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1 or self.sample_size < self.n:
            raise ValueError(
                f"need 1 <= n <= sample_size, got n={self.n}, sample_size={self.sample_size}"
            )
        if not 0 < self.quantile < 1:
            raise ValueError(f"weak quantile must be in (0, 1), got {self.quantile}")

    @classmethod
    def from_settings(cls, *, n_weak: int, weak_quantile: float) -> WeakSampling | None:
        """The sampling the ``features`` settings ask for; ``n_weak: 0`` asks for none."""
        return cls(n=n_weak, quantile=weak_quantile) if n_weak else None


@dataclass(frozen=True)
class LatentFeatures:
    """Per-latent statistics, top rows and (when asked for) weakly activating rows.

    ``top`` and ``weak`` are long tables ``latent, rank, row, activation``; ``weak`` is empty
    when no ``WeakSampling`` was given.
    """

    stats: pl.DataFrame
    top: pl.DataFrame
    weak: pl.DataFrame


def latent_stats_and_top(
    encode: Encoder,
    batches: Iterable[np.ndarray],
    d_sae: int,
    top_k: int,
    *,
    device: str | torch.device | None = None,
    weak: WeakSampling | None = None,
) -> LatentFeatures:
    """Per-latent statistics, the ``top_k`` highest-activating rows of every latent and, with
    ``weak``, a few of its weakly activating rows, all from one pass over ``batches``.

    ``encode`` must map a float32 tensor (B, d_in) on ``device`` (default CPU) to non-negative
    codes (B, d_sae): the batches and the running reductions live on ``device``, so it must be
    the device the encoder's weights are on. Rows are numbered globally in stream order, so
    ``row`` indexes the activation store the batches came from. Ties between equal activations
    are broken arbitrarily by ``torch.topk``.
    Only rows with a positive activation enter the top table, so a latent that fires on three rows
    has three top rows, and a dead latent has none; the weak rows are never among the top rows.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    device = torch.device(device or "cpu")
    sample = None if weak is None else _Reservoir.empty(d_sae, weak.sample_size, weak.seed, device)
    running = _Running.empty(d_sae, device, sample)
    with torch.inference_mode():
        for batch in tqdm(batches, desc="encoding features", unit="batch"):
            running.update(_encode_batch(encode, batch, d_sae, device), top_k)
    if running.n_rows == 0:
        raise ValueError("latent_stats_and_top got no rows: the batch stream was empty")
    top = _top_frame(running)
    if sample is None:
        return LatentFeatures(_stats_frame(running), top, top.clear())
    with torch.inference_mode():
        weak_rows = sample.weak(weak.n, weak.quantile, running.top_rows)
    return LatentFeatures(_stats_frame(running), top, weak_rows)


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
    return _ranked_frame(running.top_values.cpu().numpy(), running.top_rows.cpu().numpy())


def _ranked_frame(values: np.ndarray, rows: np.ndarray) -> pl.DataFrame:
    """Long table (latent, rank, row, activation) of the positive cells of (d_sae, k) arrays."""
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


def write_features(features: LatentFeatures, out_dir: Path) -> tuple[Path, Path, Path]:
    """Write ``stats.parquet``, ``top_images.parquet`` and ``weak_images.parquet`` atomically."""
    paths = tuple(Path(out_dir) / name for name in (STATS_FILE, TOP_FILE, WEAK_FILE))
    frames = (features.stats, features.top, features.weak)
    for frame, path in zip(frames, paths, strict=True):
        with atomic_output(path) as tmp:
            frame.write_parquet(tmp)
    return paths
