"""The TopK family: TopK (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") with the
AuxK loss, and BatchTopK (Bussmann et al. 2024, "BatchTopK Sparse Autoencoders").

Both choose an active set with one dense, gradient-free encoder matmul; everything after it works
on the active set (``ActiveSet``, k entries per row for TopK, a varying number for BatchTopK)
through ``clipsae.sae.ops``, so the decoder and both backward passes cost O(nnz d_in) instead of
O(B d_sae d_in). Subclasses change what is selected (``_train_select``) and what is reconstructed
from it (``_recon_objective``), not the kernels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import ClassVar

import torch
from torch import Tensor

from clipsae.sae.base import SAE, TrainLoss, register
from clipsae.sae.config import BatchTopKConfig, TopKConfig
from clipsae.sae.ops import ActiveSet, batch_topk, gathered_linear, sorted_topk, sparse_decode

log = logging.getLogger(__name__)


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

    def _gather(self, centred: Tensor, active: ActiveSet) -> ActiveSet:
        """The chosen pre-activations as ReLU codes with the sparse backward attached."""
        active = gathered_linear(centred, self.W_enc, self.b_enc, active)
        return active._replace(values=active.values.relu())

    def _select(self, centred: Tensor, k: int, mask: Tensor | None = None) -> ActiveSet:
        """Active set of the top-k ReLU pre-activations of each row among ``mask``."""
        pre = self._pre(centred)
        if mask is not None:
            pre.masked_fill_(~mask, float("-inf"))
        return self._gather(centred, ActiveSet.fixed_width(*sorted_topk(pre, k)))

    def _train_select(self, centred: Tensor) -> ActiveSet:
        return self._select(centred, self.k)

    def reconstruct_sparse(self, active: ActiveSet) -> Tensor:
        """Reconstruction in training units from an active set."""
        return sparse_decode(active, self.W_dec) + self.b_dec

    def _recon_objective(self, target: Tensor, active: ActiveSet) -> tuple[Tensor, Tensor, Tensor]:
        """``(objective, mse, error)``: the reconstruction term of the loss, the plain MSE of the
        full reconstruction and its error, whose residual AuxK learns."""
        error = target - self.reconstruct_sparse(active)
        mse = error.pow(2).mean()
        return mse, mse, error

    def encode_sparse(self, x: Tensor) -> ActiveSet:
        """Codes as an active set; indices increasing within a row."""
        return self._select(x * self.scale - self.b_dec, self.k)

    def decode_sparse(self, active: ActiveSet) -> Tensor:
        return self.reconstruct_sparse(active) / self.scale

    def encode(self, x: Tensor) -> Tensor:
        return self.forward_with_codes(x)[0]

    def forward(self, x: Tensor) -> Tensor:
        return self.decode_sparse(self.encode_sparse(x))

    def forward_with_codes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        active = self.encode_sparse(x)
        return active.to_dense(self.cfg.d_sae), self.decode_sparse(active)

    def dense_codes(self, x: Tensor) -> Tensor:
        return self.pre_acts(x).relu()

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        target = x * self.scale
        centred = target - self.b_dec
        active = self._train_select(centred)
        objective, mse, error = self._recon_objective(target, active)
        aux = self._aux_loss(centred, error.detach(), dead)
        loss = objective + self.cfg.aux_k_coef * aux
        l1_coef = self.cfg.l1_at(progress)
        if l1_coef > 0:
            loss = loss + l1_coef * self.l1_penalty(active)
        fired = active.values.detach() > 0
        fire_counts = torch.bincount(active.indices[fired], minlength=self.cfg.d_sae)
        l0 = fired.sum().float() / len(x)
        return TrainLoss(loss, mse, aux, l0, fire_counts)

    def _aux_loss(self, centred: Tensor, error: Tensor, dead: Tensor) -> Tensor:
        """AuxK: the top ``aux_k`` dead latents reconstruct the main model's residual, giving
        them gradient. Normalised by the residual's variance, as in Gao et al., so its scale does
        not shrink as the main reconstruction improves."""
        n_dead = int(dead.sum())
        if n_dead == 0 or self.cfg.aux_k_coef == 0:
            return error.new_zeros(())
        k_aux = min(self.cfg.aux_k or self.cfg.d_in // 2, n_dead)
        residual_hat = sparse_decode(self._select(centred, k_aux, mask=dead), self.W_dec)
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
    a first training step sets it (it starts at -1), any positive pre-activation is kept.

    The batch-wide selection takes its candidates above a bound estimated from a sample of the
    batch, ``oversample`` times deeper than the cut (``batch_topk``); when the bound misses,
    every positive pre-activation is a candidate, which is slower, and logged at debug level.
    """

    cfg: BatchTopKConfig
    oversample: ClassVar[float] = 2.0

    def __init__(self, cfg: BatchTopKConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.register_buffer("threshold", torch.tensor(-1.0))

    def _batch_select(self, pre: Tensor) -> ActiveSet:
        """The positive pre-activations among the k·B largest of a batch of B rows."""
        active, fast = batch_topk(pre, k=self.k, oversample=self.oversample)
        if not fast:
            log.debug("the sampled bound missed the batch's cut: every positive is a candidate")
        return active

    def _train_select(self, centred: Tensor) -> ActiveSet:
        active = self._batch_select(self._pre(centred))
        if len(active.values):
            self._update_threshold(float(active.values.min()), self.cfg.threshold_momentum)
        return self._gather(centred, active)

    @torch.no_grad()
    def calibrate(self, batches: Iterable[Tensor]) -> None:
        cuts = []
        for x in batches:
            kept = self._batch_select(self._pre(x * self.scale - self.b_dec)).values
            if len(kept):
                cuts.append(float(kept.min()))
        if cuts:
            self.threshold.fill_(sum(cuts) / len(cuts))

    @torch.no_grad()
    def _update_threshold(self, smallest_kept: float, momentum: float) -> None:
        previous = float(self.threshold)
        first = previous < 0
        self.threshold.fill_(
            smallest_kept if first else momentum * previous + (1 - momentum) * smallest_kept
        )

    def encode_sparse(self, x: Tensor) -> ActiveSet:
        centred = x * self.scale - self.b_dec
        pre = self._pre(centred)
        threshold = self.threshold.clamp_min(0)
        return self._gather(centred, ActiveSet.where(pre, (pre >= threshold) & (pre > 0)))
