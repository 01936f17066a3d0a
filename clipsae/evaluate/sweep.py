"""Reconstruction metrics as the sparsity budget at inference changes.

A TopK-family SAE trained at one k can be run at any other: the k largest pre-activations of a
row are kept, up to k = d_sae, which is the dense path (every positive pre-activation). A
``matryoshka_prefix`` SAE is meant to work with only its first m latents. Both are evaluated
here on ordinary SAE copies (``at_k``, ``prefix``) sharing the trained weights, so the metrics
come from the same code as the plain evaluation (``clipsae.sae.metrics``), and any other
evaluation (zero-shot, the linear probe) can take the copies too.

For ``batchtopk`` and ``matryoshka_prefix`` the plain inference keeps the pre-activations above
a learned threshold, not a fixed k per row; their k-sweep points use per-row top-k (as
TopK does), so even at the trained k they differ from the plain evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from clipsae.sae.base import SAE
from clipsae.sae.config import BatchTopKConfig, TopKConfig
from clipsae.sae.matryoshka import MatryoshkaKSAE, MatryoshkaPrefixSAE
from clipsae.sae.metrics import reconstruction_metrics
from clipsae.sae.topk import BatchTopKSAE, TopKSAE

_SHARED = ("W_enc", "b_enc", "W_dec", "b_dec")

# The evaluation rows, yielded afresh by each call: a sweep passes over them once per setting.
Batches = Callable[[], Iterable[np.ndarray]]
Device = str | torch.device | None


def _copy_into(copy: SAE, source: SAE, latents: int) -> SAE:
    """``copy`` with the first ``latents`` latents of ``source``'s weights, on its device."""
    state = {
        "W_enc": source.W_enc[:, :latents],
        "b_enc": source.b_enc[:latents],
        "W_dec": source.W_dec[:latents],
        "b_dec": source.b_dec,
    }
    with torch.no_grad():
        for name in _SHARED:
            getattr(copy, name).copy_(state[name])
    return copy.to(source.W_dec.device).eval()


def at_k(sae: TopKSAE, k: int) -> TopKSAE:
    """A TopK SAE with ``sae``'s weights that keeps the ``k`` largest pre-activations per row."""
    if not isinstance(sae, TopKSAE):
        raise ValueError(f"a k-sweep needs a TopK-family SAE, not {sae.cfg.arch!r}")
    cfg = TopKConfig(d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae, k=k, input_scale=sae.cfg.input_scale)
    return _copy_into(TopKSAE(cfg), sae, sae.cfg.d_sae)


def prefix(sae: MatryoshkaPrefixSAE, size: int) -> BatchTopKSAE:
    """The first ``size`` latents of a ``matryoshka_prefix`` SAE as a BatchTopK SAE.

    Its inference keeps each latent whose pre-activation clears the shared threshold,
    independently of the others, so cutting the dictionary equals zeroing the later codes.
    """
    if not isinstance(sae, MatryoshkaPrefixSAE):
        raise ValueError(f"a prefix sweep needs a matryoshka_prefix SAE, not {sae.cfg.arch!r}")
    if not 0 < size <= sae.cfg.d_sae:
        raise ValueError(f"prefix size must be in 1..{sae.cfg.d_sae}, got {size}")
    k = min(sae.cfg.k, size)
    cfg = BatchTopKConfig(d_in=sae.cfg.d_in, d_sae=size, k=k, input_scale=sae.cfg.input_scale)
    copy = BatchTopKSAE(cfg)
    copy.threshold.copy_(sae.threshold)
    return _copy_into(copy, sae, size)


def k_grid(sae: TopKSAE, start: int = 8) -> list[int]:
    """Powers of two from ``start`` below d_sae, the trained k (and a Matryoshka SAE's
    ``k_list``), and d_sae itself: the dense end of the sweep."""
    d_sae = sae.cfg.d_sae
    ks = {sae.cfg.k, d_sae, *(sae.k_list if isinstance(sae, MatryoshkaKSAE) else [])}
    power = start
    while power < d_sae:
        ks.add(power)
        power *= 2
    return sorted(ks)


def k_sweep(
    sae: TopKSAE, batches: Batches, ks: Sequence[int] | None = None, device: Device = None
) -> list[dict]:
    """One row of reconstruction metrics per inference k (default ``k_grid``), ``k`` first."""
    ks = k_grid(sae) if ks is None else ks
    return [
        {"k": k, **reconstruction_metrics(at_k(sae, k), batches(), device, dense=False)} for k in ks
    ]


def prefix_sweep(
    sae: MatryoshkaPrefixSAE,
    batches: Batches,
    sizes: Sequence[int] | None = None,
    device: Device = None,
) -> list[dict]:
    """One row of reconstruction metrics per prefix size (default: the trained prefix sizes and
    the whole dictionary), ``prefix`` first; ``l0_frac`` and ``dead_frac`` are of the prefix."""
    sizes = sae.prefix_sizes if sizes is None else sizes
    return [
        {"prefix": m, **reconstruction_metrics(prefix(sae, m), batches(), device, dense=False)}
        for m in sizes
    ]


def nested_sweep(sae: TopKSAE, batches: Batches, device: Device = None) -> list[dict]:
    """A Matryoshka SAE at each of its nested sizes: ``k_list`` for ``matryoshka_k``, the
    prefixes for ``matryoshka_prefix``."""
    if isinstance(sae, MatryoshkaKSAE):
        return k_sweep(sae, batches, sae.k_list, device)
    if isinstance(sae, MatryoshkaPrefixSAE):
        return prefix_sweep(sae, batches, device=device)
    raise ValueError(f"{sae.cfg.arch!r} is not a Matryoshka SAE")
