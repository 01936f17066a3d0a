"""ReLU SAE with an L1 penalty (Bricken et al. 2023; Anthropic's April 2024 update).

The penalty is the L1 norm of the codes weighted by decoder row norms, as in the April 2024
recipe (the plain L1 while the trainer keeps rows at unit norm). Its coefficient ``l1_coef`` is
reached linearly from ``l1_coef_start`` over the first ``sparsity_warmup_frac`` of the run, which
keeps latents from being silenced before they find a direction.
"""

from __future__ import annotations

from torch import Tensor

from clipsae.sae.base import SAE, TrainLoss, register
from clipsae.sae.config import ReLUConfig


@register(ReLUConfig)
class ReLUSAE(SAE):
    cfg: ReLUConfig

    def encode(self, x: Tensor) -> Tensor:
        return self.pre_acts(x).relu()

    def dense_codes(self, x: Tensor) -> Tensor:
        return self.encode(x)

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        codes = self.encode(x)
        mse = (x * self.scale - self.reconstruct(codes)).pow(2).mean()
        l1 = self.l1_penalty(codes)
        return TrainLoss.from_codes(mse + self.cfg.l1_at(progress) * l1, mse, l1, codes)
