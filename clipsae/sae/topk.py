"""TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") with the AuxK loss.

The encoder keeps the k largest ReLU pre-activations per row. Everything after the single dense
encoder matmul works on the (B, k) active set through ``clipsae.sae.ops``, so the decoder and both
backward passes cost O(B k d_in) instead of O(B d_sae d_in).
"""

from __future__ import annotations

import torch
from torch import Tensor

from clipsae.sae.base import SAE, TrainLoss, register
from clipsae.sae.config import SAEConfig, TrainConfig
from clipsae.sae.ops import gathered_linear, sorted_topk, sparse_decode


@register("topk")
class TopKSAE(SAE):
    def __init__(self, cfg: SAEConfig, generator: torch.Generator | None = None) -> None:
        if cfg.k is None:
            raise ValueError("a TopK SAE needs k")
        super().__init__(cfg, generator)
        self.k = cfg.k

    def _select(self, centred: Tensor, k: int, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Active set ``(values, indices)`` of the top-k ReLU pre-activations among ``mask``."""
        with torch.no_grad():
            pre = torch.addmm(self.b_enc, centred, self.W_enc)
            if mask is not None:
                pre.masked_fill_(~mask, float("-inf"))
            top, indices = sorted_topk(pre, k)
        return gathered_linear(centred, self.W_enc, self.b_enc, indices, top).relu(), indices

    def encode_sparse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Codes as ``(values, indices)``, each (B, k); indices sorted within a row."""
        return self._select(x * self.scale - self.b_dec, self.k)

    def decode_sparse(self, values: Tensor, indices: Tensor) -> Tensor:
        return (sparse_decode(values, indices, self.W_dec) + self.b_dec) / self.scale

    def encode(self, x: Tensor) -> Tensor:
        values, indices = self.encode_sparse(x)
        return values.new_zeros(len(x), self.cfg.d_sae).scatter(1, indices, values)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode_sparse(*self.encode_sparse(x))

    def forward_with_codes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        values, indices = self.encode_sparse(x)
        codes = values.new_zeros(len(x), self.cfg.d_sae).scatter(1, indices, values)
        return codes, self.decode_sparse(values, indices)

    def dense_codes(self, x: Tensor) -> Tensor:
        return self.pre_acts(x).relu()

    def train_loss(self, x: Tensor, dead: Tensor, tcfg: TrainConfig) -> TrainLoss:
        target = x * self.scale
        centred = target - self.b_dec
        values, indices = self._select(centred, self.k)
        error = target - (sparse_decode(values, indices, self.W_dec) + self.b_dec)
        mse = error.pow(2).mean()
        aux = self._aux_loss(centred, error.detach(), dead, tcfg)
        active = values > 0
        fire_counts = torch.bincount(indices[active], minlength=self.cfg.d_sae)
        l0 = active.sum(dim=1).float().mean()
        return TrainLoss(mse + tcfg.aux_k_coef * aux, mse, aux, l0, fire_counts)

    def _aux_loss(self, centred: Tensor, error: Tensor, dead: Tensor, tcfg: TrainConfig) -> Tensor:
        """AuxK: the top ``aux_k`` dead latents reconstruct the main model's residual, giving
        them gradient. Normalised by the residual's variance, as in Gao et al., so its scale does
        not shrink as the main reconstruction improves."""
        n_dead = int(dead.sum())
        if n_dead == 0 or tcfg.aux_k_coef == 0:
            return error.new_zeros(())
        k_aux = min(tcfg.aux_k or self.cfg.d_in // 2, n_dead)
        values, indices = self._select(centred, k_aux, mask=dead)
        residual_hat = sparse_decode(values, indices, self.W_dec)
        spread = (error - error.mean(dim=0)).pow(2).sum().clamp_min(1e-12)
        return (residual_hat - error).pow(2).sum() / spread
