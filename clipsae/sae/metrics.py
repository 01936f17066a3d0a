"""Dataset-level reconstruction metrics of an SAE, streamed over batches in one pass.

FVU here is the dataset-level fraction of variance unexplained,
``sum ||x - x_hat||^2 / sum ||x - mean(x)||^2``, with the mean taken over the whole data
set (not per batch, not per dimension). The denominator is
accumulated as ``sum ||x||^2 - n ||mean||^2`` in float64 so one pass suffices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from clipsae.sae.base import SAE


@dataclass
class _Sums:
    """Running float64 sums for one (codes, x_hat) path."""

    d_sae: int
    n: int = 0
    sq_err: float = 0.0
    sq_x: float = 0.0
    cosine: float = 0.0
    l0: float = 0.0
    l1: float = 0.0
    x_sum: Tensor | None = None
    fire_counts: Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.fire_counts = torch.zeros(self.d_sae, dtype=torch.int64)

    def add(self, x: Tensor, codes: Tensor, x_hat: Tensor) -> None:
        x64 = x.double()
        err = x64 - x_hat.double()
        self.n += len(x)
        self.sq_err += float(err.pow(2).sum())
        self.sq_x += float(x64.pow(2).sum())
        batch_sum = x64.sum(dim=0).cpu()
        self.x_sum = batch_sum if self.x_sum is None else self.x_sum + batch_sum
        cos = torch.nn.functional.cosine_similarity(x64, x_hat.double(), dim=1, eps=1e-12)
        self.cosine += float(cos.sum())
        active = codes > 0
        self.l0 += float(active.sum())
        self.l1 += float(codes.double().abs().sum())
        self.fire_counts += active.sum(dim=0).cpu()

    def result(self, d_in: int) -> dict[str, float | int]:
        if self.n == 0:
            raise ValueError("no rows to compute reconstruction metrics on")
        variance = self.sq_x - float(self.x_sum.pow(2).sum()) / self.n
        fvu = self.sq_err / variance if variance > 0 else float("nan")
        l0 = self.l0 / self.n
        return {
            "n": self.n,
            "mse": self.sq_err / (self.n * d_in),
            "fvu": fvu,
            "r2": 1.0 - fvu,
            "cosine": self.cosine / self.n,
            "l0": l0,
            "l0_frac": l0 / self.d_sae,
            "l1": self.l1 / self.n,
            "dead_frac": float((self.fire_counts == 0).double().mean()),
        }


def reconstruction_metrics_with_counts(
    sae: SAE,
    batches: Iterable[np.ndarray],
    device: str | torch.device | None = None,
    dense: bool = True,
) -> tuple[dict[str, float | int], np.ndarray]:
    """Metrics (see ``reconstruction_metrics``) and per-latent firing counts (d_sae,) as int64."""
    device = torch.device(device) if device is not None else sae.W_dec.device
    sae = sae.to(device)
    main = _Sums(sae.cfg.d_sae)
    dense_sums: _Sums | None = None
    with torch.no_grad():
        for batch in batches:
            x = torch.tensor(np.asarray(batch, dtype=np.float32), device=device)
            main.add(x, *sae.forward_with_codes(x))
            dense_codes = sae.dense_codes(x) if dense else None
            if dense_codes is not None:
                dense_sums = dense_sums or _Sums(sae.cfg.d_sae)
                dense_sums.add(x, dense_codes, sae.decode(dense_codes))
    metrics = main.result(sae.cfg.d_in)
    if dense_sums is not None:
        dense_metrics = dense_sums.result(sae.cfg.d_in)
        metrics |= {f"dense_{key}": value for key, value in dense_metrics.items() if key != "n"}
    return metrics, main.fire_counts.numpy()


def reconstruction_metrics(
    sae: SAE,
    batches: Iterable[np.ndarray],
    device: str | torch.device | None = None,
    dense: bool = True,
) -> dict[str, float | int]:
    """Keys ``n, mse, fvu, r2, cosine, l0, l0_frac, l1, dead_frac``, JSON-ready floats.

    ``mse`` is the mean over elements, ``cosine`` the mean over rows of cos(x, x_hat), ``l0``/``l1``
    per-row means over codes, ``dead_frac`` the fraction of latents that never fired on these rows.
    With ``dense`` and an architecture that has a dense variant (TopK: ReLU without the top-k),
    the same keys prefixed ``dense_`` describe that variant.
    """
    return reconstruction_metrics_with_counts(sae, batches, device, dense)[0]
