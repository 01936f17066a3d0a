"""JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead"; the SAELens training recipe).

A latent passes its pre-activation through only where it exceeds its own learned threshold
``exp(log_threshold)``; the loss is MSE plus ``l0_coef`` (reached from ``l0_coef_start`` over the
first ``sparsity_warmup_frac`` of the run) times the L0 norm. Both the jump and the L0 count are
step functions of the threshold, so the threshold learns through straight-through estimators with
a rectangle kernel of width ``bandwidth``: only pre-activations within ``bandwidth / 2`` of the
threshold inform it.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torch.autograd import Function

from clipsae.sae.base import SAE, TrainLoss, register
from clipsae.sae.config import JumpReLUConfig


def _rectangle(u: Tensor) -> Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(Function):
    """``pre * H(pre - theta)``; theta gets the pseudo-derivative -(theta/eps) K((pre-theta)/eps)"""

    @staticmethod
    def forward(ctx, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        pre, theta = ctx.saved_tensors
        kernel = _rectangle((pre - theta) / ctx.bandwidth)
        grad_theta = -(theta / ctx.bandwidth) * kernel * grad
        return (pre > theta) * grad, grad_theta.sum(dim=0), None


class _Step(Function):
    """``H(pre - theta)``; no gradient to ``pre``, ``-(1/eps) K((pre-theta)/eps)`` to theta."""

    @staticmethod
    def forward(ctx, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor, None]:
        pre, theta = ctx.saved_tensors
        kernel = _rectangle((pre - theta) / ctx.bandwidth)
        return None, (-kernel * grad / ctx.bandwidth).sum(dim=0), None


@register(JumpReLUConfig)
class JumpReLUSAE(SAE):
    latent_axes: ClassVar[dict[str, int]] = {**SAE.latent_axes, "log_threshold": 0}
    cfg: JumpReLUConfig

    def __init__(self, cfg: JumpReLUConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        init = torch.full((cfg.d_sae,), cfg.jumprelu_init_threshold).log()
        self.log_threshold = torch.nn.Parameter(init)

    @property
    def threshold(self) -> Tensor:
        return self.log_threshold.exp()

    def encode(self, x: Tensor) -> Tensor:
        pre = self.pre_acts(x)
        return pre * (pre > self.threshold)

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        pre = self.pre_acts(x)
        codes = _JumpReLU.apply(pre, self.threshold, self.cfg.bandwidth)
        mse = (x * self.scale - self.reconstruct(codes)).pow(2).mean()
        l0 = _Step.apply(pre, self.threshold, self.cfg.bandwidth).sum(dim=1).mean()
        return TrainLoss.from_codes(mse + self.cfg.l0_at(progress) * l0, mse, l0, codes)
