"""ReLU SAE with an L1 penalty (Bricken et al. 2023; Anthropic's April 2024 update).

The penalty is the plain L1 norm of the codes, not weighted by decoder row norms: the trainer
renormalises every decoder row to unit norm after each step, so the norm-weighted penalty of the
April 2024 recipe would equal it exactly. Its coefficient ``l1_coef`` ramps linearly from ~0 over
``sparsity_warmup_steps``, which keeps latents from being silenced before they find a direction.
"""

from __future__ import annotations

from torch import Tensor

from clipsae.sae.base import SAE, TrainLoss, ramp, register
from clipsae.sae.config import TrainConfig


@register("relu")
class ReLUSAE(SAE):
    def encode(self, x: Tensor) -> Tensor:
        return self.pre_acts(x).relu()

    def dense_codes(self, x: Tensor) -> Tensor:
        return self.encode(x)

    def train_loss(self, x: Tensor, dead: Tensor, tcfg: TrainConfig, step: int) -> TrainLoss:
        codes = self.encode(x)
        mse = (x * self.scale - self.reconstruct(codes)).pow(2).mean()
        l1 = codes.sum(dim=1).mean()
        coef = tcfg.l1_coef * ramp(step, tcfg.sparsity_warmup_steps)
        return TrainLoss.from_codes(mse + coef * l1, mse, l1, codes)
