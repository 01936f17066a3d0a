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

import torch
from torch import Tensor

from clipsae.sae.base import register
from clipsae.sae.config import MatryoshkaKConfig, MatryoshkaPrefixConfig
from clipsae.sae.ops import ActiveSet, sparse_decode
from clipsae.sae.topk import BatchTopKSAE, TopKSAE


def nested_objective(
    sae: TopKSAE, target: Tensor, active: ActiveSet, level: Tensor, weights: list[float]
) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted sum of the MSEs of reconstructions from nested parts of one active set: entry i
    belongs to the parts ``level[i]`` onwards, and ``weights`` weigh the parts' MSEs from the
    smallest to the whole code, whose MSE and error are also returned (they are what the trainer
    logs and AuxK fits). One decode of the active set split by level gives each level's new
    part; their running sums are the nested reconstructions, so the cost does not grow with the
    number of levels."""
    n_levels = len(weights)
    parts = sparse_decode(active.by_level(level, n_levels), sae.W_dec)
    recon = parts.view(active.n_rows, n_levels, -1).cumsum(dim=1) + sae.b_dec
    error = target.unsqueeze(1) - recon
    mses = error.pow(2).mean(dim=(0, 2))
    return mses @ mses.new_tensor(weights), mses[-1], error[:, -1]


def _level(values: Tensor, sizes: list[int]) -> Tensor:
    """The first nested part whose size exceeds each of ``values`` (a rank or a latent)."""
    return torch.bucketize(values, values.new_tensor(sizes[:-1]), right=True)


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

    def _recon_objective(self, target: Tensor, active: ActiveSet) -> tuple[Tensor, Tensor, Tensor]:
        values = active.values.detach().view(active.n_rows, -1)  # k_list[-1] per row
        rank = values.argsort(dim=1, descending=True).argsort(dim=1).flatten()
        level = _level(rank, self.k_list)
        return nested_objective(self, target, active, level, self.level_weights())


@register(MatryoshkaPrefixConfig)
class MatryoshkaPrefixSAE(BatchTopKSAE):
    cfg: MatryoshkaPrefixConfig

    def __init__(
        self, cfg: MatryoshkaPrefixConfig, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(cfg, generator)
        self.prefix_sizes = [*cfg.prefix_sizes, cfg.d_sae]

    def _recon_objective(self, target: Tensor, active: ActiveSet) -> tuple[Tensor, Tensor, Tensor]:
        level = _level(active.indices, self.prefix_sizes)
        return nested_objective(self, target, active, level, [1.0] * len(self.prefix_sizes))
