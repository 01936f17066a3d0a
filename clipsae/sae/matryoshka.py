"""Matryoshka SAEs: one dictionary trained so that nested parts of its code reconstruct on their
own, in the two published forms.

* ``matryoshka_k`` (MSAE, Zaigrajew et al., ICML 2025): a TopK encoder whose top-k_i latents, for
  each k_i in ``k_list``, must reconstruct the input; the losses are weighted uniformly or in
  reverse (the weight of the i-th smallest k is proportional to the i-th largest k, so the
  sparsest reconstruction weighs most). Inference uses ``k`` (default ``max(k_list)``).
* ``matryoshka_prefix`` (Bussmann et al. 2025; saev, dictionary_learning and SAELens): a BatchTopK
  encoder whose latents ``0..m-1``, for each prefix size m in ``prefix_sizes`` and the whole
  dictionary, must reconstruct the input; the prefix losses are summed, so early latents learn
  general features that later ones refine instead of absorbing them.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from clipsae.sae.base import register
from clipsae.sae.config import MatryoshkaKConfig, MatryoshkaPrefixConfig
from clipsae.sae.topk import BatchTopKSAE, TopKSAE


def nested_objective(
    sae: TopKSAE,
    target: Tensor,
    values: Tensor,
    indices: Tensor,
    levels: Iterable[tuple[float, Tensor]],
) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted sum of the MSEs of reconstructions from masked parts of one active set.
    ``levels`` yields ``(weight, keep mask)`` from the smallest part to the whole code, whose
    MSE and error are also returned (they are what the trainer logs and AuxK fits)."""
    objective = target.new_zeros(())
    for weight, keep in levels:
        error = target - sae.reconstruct_sparse(values * keep, indices)
        mse = error.pow(2).mean()
        objective = objective + weight * mse
    return objective, mse, error


@register(MatryoshkaKConfig)
class MatryoshkaKSAE(TopKSAE):
    cfg: MatryoshkaKConfig

    def __init__(self, cfg: MatryoshkaKConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.k_list = list(cfg.k_list)

    def level_weights(self) -> list[float]:
        """Weights summing to 1, so the objective stays on the scale of one MSE."""
        reverse = self.cfg.loss_weighting == "reverse"
        raw = self.k_list[::-1] if reverse else [1] * len(self.k_list)
        return [w / sum(raw) for w in raw]

    def _train_select(self, centred: Tensor) -> tuple[Tensor, Tensor]:
        return self._select(centred, self.k_list[-1])

    def _recon_objective(
        self, target: Tensor, values: Tensor, indices: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        rank = values.detach().argsort(dim=1, descending=True).argsort(dim=1)
        levels = ((w, rank < k) for w, k in zip(self.level_weights(), self.k_list, strict=True))
        return nested_objective(self, target, values, indices, levels)


@register(MatryoshkaPrefixConfig)
class MatryoshkaPrefixSAE(BatchTopKSAE):
    cfg: MatryoshkaPrefixConfig

    def __init__(
        self, cfg: MatryoshkaPrefixConfig, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(cfg, generator)
        self.prefix_sizes = [*cfg.prefix_sizes, cfg.d_sae]

    def _recon_objective(
        self, target: Tensor, values: Tensor, indices: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        levels = ((1.0, indices < m) for m in self.prefix_sizes)
        return nested_objective(self, target, values, indices, levels)
