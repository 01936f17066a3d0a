"""Error baselines for CLIP+SAE: what the accuracy would be without the SAE's reconstruction.

An accuracy drop means little alone: a layer may matter little (then removing it costs little
too) or a lot. Two replacements of the activation bracket the SAE's result:

* ``error_only``: the reconstruction error ``x - x_hat`` alone in place of ``x``, i.e. what the
  SAE failed to explain. If that still classifies well, the SAE missed what the task needs.
* ``mean_ablated``: the layer's mean activation in place of every ``x``, i.e. no information
  from the image at that layer; the floor any reconstruction should clear.

Both are ``Reconstruct`` callables, so they go wherever an SAE's reconstruction goes: into
``zeroshot_on_embeddings`` for ``final`` and into ``zeroshot_spliced`` (the CLS token) for
``block{N}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from clipsae.evaluate.zeroshot import Reconstruct, zeroshot_on_embeddings


def error_only(reconstruct: Reconstruct) -> Reconstruct:
    """The residual ``x - reconstruct(x)`` in place of ``x``."""

    def residual(x: torch.Tensor) -> torch.Tensor:
        return x - reconstruct(x)

    return residual


def mean_ablated(mean: np.ndarray) -> Reconstruct:
    """``mean`` (d,) in place of every row, on the rows' device and dtype."""
    mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32))

    def constant(x: torch.Tensor) -> torch.Tensor:
        return mean_t.to(device=x.device, dtype=x.dtype).expand_as(x)

    return constant


def activation_mean(batches: Iterable[np.ndarray]) -> np.ndarray:
    """Mean row over all batches, summed in float64 so that a long stream does not drift."""
    total, n = None, 0
    for batch in batches:
        batch_sum = np.asarray(batch, dtype=np.float64).sum(axis=0)
        total = batch_sum if total is None else total + batch_sum
        n += len(batch)
    if n == 0:
        raise ValueError("no rows to take the activation mean of")
    return (total / n).astype(np.float32)


def zeroshot_error_baselines(
    *,
    batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
    class_embeddings: np.ndarray,
    reconstruct: Reconstruct,
    mean: np.ndarray,
    device: torch.device,
) -> dict[str, dict]:
    """Zero-shot results (as ``zeroshot_on_embeddings``) for ``error_only`` and ``mean_ablated``;
    ``batches()`` yields the (embeddings, labels) batches afresh for each of the two passes."""
    return {
        "error_only": zeroshot_on_embeddings(
            batches(), class_embeddings, error_only(reconstruct), device
        ),
        "mean_ablated": zeroshot_on_embeddings(
            batches(), class_embeddings, mean_ablated(mean), device
        ),
    }
