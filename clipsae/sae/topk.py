"""The TopK family: TopK (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") with the
AuxK loss, and BatchTopK (Bussmann et al. 2024, "BatchTopK Sparse Autoencoders").

Both choose an active set with one dense, gradient-free encoder matmul; everything after it works
on the (B, width) active set through ``clipsae.sae.ops``, so the decoder and both backward passes
cost O(B width d_in) instead of O(B d_sae d_in). Subclasses change what is selected
(``_train_select``) and what is reconstructed from it (``_recon_objective``), not the kernels.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from clipsae.sae.base import SAE, TrainLoss, register
from clipsae.sae.config import BatchTopKConfig, TopKConfig
from clipsae.sae.ops import gathered_linear, sorted_topk, sparse_decode


@register(TopKConfig)
class TopKSAE(SAE):
    """Exactly the k largest ReLU pre-activations of each row are kept; an optional L1 penalty
    (``cfg.l1_coef``) on the kept codes pushes them further towards zero."""

    cfg: TopKConfig

    def __init__(self, cfg: TopKConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.k = cfg.k

    def _pre(self, centred: Tensor) -> Tensor:
        """Pre-activations without a graph: they only choose the active set."""
        with torch.no_grad():
            return torch.addmm(self.b_enc, centred, self.W_enc)

    def _gather(self, centred: Tensor, top: Tensor, indices: Tensor) -> Tensor:
        """The chosen pre-activations as ReLU codes with the sparse backward attached."""
        return gathered_linear(centred, self.W_enc, self.b_enc, indices, top).relu()

    def _select(self, centred: Tensor, k: int, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Active set ``(values, indices)`` of the top-k ReLU pre-activations among ``mask``."""
        pre = self._pre(centred)
        if mask is not None:
            pre.masked_fill_(~mask, float("-inf"))
        top, indices = sorted_topk(pre, k)
        return self._gather(centred, top, indices), indices

    def _train_select(self, centred: Tensor) -> tuple[Tensor, Tensor]:
        return self._select(centred, self.k)

    def reconstruct_sparse(self, values: Tensor, indices: Tensor) -> Tensor:
        """Reconstruction in training units from an active set."""
        return sparse_decode(values, indices, self.W_dec) + self.b_dec

    def _recon_objective(
        self, target: Tensor, values: Tensor, indices: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(objective, mse, error)``: the reconstruction term of the loss, the plain MSE of the
        full reconstruction and its error, whose residual AuxK learns."""
        error = target - self.reconstruct_sparse(values, indices)
        mse = error.pow(2).mean()
        return mse, mse, error

    def encode_sparse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Codes as ``(values, indices)``, each (B, width); indices sorted within a row."""
        return self._select(x * self.scale - self.b_dec, self.k)

    def decode_sparse(self, values: Tensor, indices: Tensor) -> Tensor:
        return self.reconstruct_sparse(values, indices) / self.scale

    def encode(self, x: Tensor) -> Tensor:
        return self.forward_with_codes(x)[0]

    def forward(self, x: Tensor) -> Tensor:
        return self.decode_sparse(*self.encode_sparse(x))

    def forward_with_codes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        values, indices = self.encode_sparse(x)
        codes = values.new_zeros(len(x), self.cfg.d_sae).scatter(1, indices, values)
        return codes, self.decode_sparse(values, indices)

    def dense_codes(self, x: Tensor) -> Tensor:
        return self.pre_acts(x).relu()

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        target = x * self.scale
        centred = target - self.b_dec
        values, indices = self._train_select(centred)
        objective, mse, error = self._recon_objective(target, values, indices)
        aux = self._aux_loss(centred, error.detach(), dead)
        loss = objective + self.cfg.aux_k_coef * aux
        l1_coef = self.cfg.l1_at(progress)
        if l1_coef > 0:
            loss = loss + l1_coef * self.l1_penalty(values, indices)
        active = values.detach() > 0
        fire_counts = torch.bincount(indices[active], minlength=self.cfg.d_sae)
        l0 = active.sum(dim=1).float().mean()
        return TrainLoss(loss, mse, aux, l0, fire_counts)

    def _aux_loss(self, centred: Tensor, error: Tensor, dead: Tensor) -> Tensor:
        """AuxK: the top ``aux_k`` dead latents reconstruct the main model's residual, giving
        them gradient. Normalised by the residual's variance, as in Gao et al., so its scale does
        not shrink as the main reconstruction improves."""
        n_dead = int(dead.sum())
        if n_dead == 0 or self.cfg.aux_k_coef == 0:
            return error.new_zeros(())
        k_aux = min(self.cfg.aux_k or self.cfg.d_in // 2, n_dead)
        values, indices = self._select(centred, k_aux, mask=dead)
        residual_hat = sparse_decode(values, indices, self.W_dec)
        spread = (error - error.mean(dim=0)).pow(2).sum().clamp_min(1e-12)
        return (residual_hat - error).pow(2).sum() / spread


@register(BatchTopKConfig)
class BatchTopKSAE(TopKSAE):
    """Training keeps the k·B largest ReLU pre-activations of the whole batch, so rows share a
    budget of k per row on average. Inference cannot depend on the batch, so it keeps every
    pre-activation at or above ``threshold``, a buffer saved with the weights. During training
    it is the exponential average (momentum ``threshold_momentum``) of the smallest positive
    activation kept in each batch, which is what validation and checkpoints use; that average
    lags the moving weights (over a run of 78 steps, 46% of it is still the first step's value,
    and the held-out L0 was 13 for k = 32), so ``calibrate`` replaces it after the last step by
    the mean of the same statistic over batches of training rows under the final weights. Until
    a first training step sets it (it starts at -1), any positive pre-activation is kept."""

    cfg: BatchTopKConfig

    def __init__(self, cfg: BatchTopKConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.register_buffer("threshold", torch.tensor(-1.0))

    def _keep_above(self, centred: Tensor, pre: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
        """Active set of the pre-activations >= ``threshold`` (and > 0), padded to the widest
        row with zero-valued entries so the fixed-width sparse kernels still apply."""
        width = max(1, int(((pre >= threshold) & (pre > 0)).sum(dim=1).max()))
        top, indices = sorted_topk(pre, width)
        keep = (top >= threshold) & (top > 0)
        return self._gather(centred, top, indices) * keep, indices

    def _batch_kept(self, pre: Tensor) -> Tensor:
        """The k·B largest pre-activations of a batch of B rows, in decreasing order."""
        return pre.flatten().topk(min(self.k * len(pre), pre.numel())).values

    def _train_select(self, centred: Tensor) -> tuple[Tensor, Tensor]:
        pre = self._pre(centred)
        kept = self._batch_kept(pre)
        cut = _smallest_positive(kept)
        if cut is not None:
            self._update_threshold(cut, self.cfg.threshold_momentum)
        return self._keep_above(centred, pre, float(kept[-1]))

    @torch.no_grad()
    def calibrate(self, batches: Iterable[Tensor]) -> None:
        cuts = []
        for x in batches:
            pre = self._pre(x * self.scale - self.b_dec)
            cuts.append(_smallest_positive(self._batch_kept(pre)))
        positive = [cut for cut in cuts if cut is not None]
        if positive:
            self.threshold.fill_(sum(positive) / len(positive))

    @torch.no_grad()
    def _update_threshold(self, smallest_kept: float, momentum: float) -> None:
        previous = float(self.threshold)
        first = previous < 0
        self.threshold.fill_(
            smallest_kept if first else momentum * previous + (1 - momentum) * smallest_kept
        )

    def encode_sparse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        centred = x * self.scale - self.b_dec
        return self._keep_above(centred, self._pre(centred), float(self.threshold.clamp_min(0)))


def _smallest_positive(kept: Tensor) -> float | None:
    """The smallest positive value of ``kept`` (sorted in decreasing order): the cut a batch's
    BatchTopK selection made, or ``None`` if nothing positive was kept."""
    positive = kept[kept > 0]
    return float(positive[-1]) if len(positive) else None
