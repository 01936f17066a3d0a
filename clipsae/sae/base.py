"""The SAE interface every architecture implements, and the registry that maps ``cfg.arch`` (the
architecture's config class, ``clipsae.sae.config``) to it.

Inputs are taken and returned in their original units: ``input_scale`` (from the config) maps them
to the training units internally, so callers never see the normalisation. ``b_dec`` lives in the
training units: it is subtracted before encoding and added back after decoding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from clipsae.sae.config import SAEConfig
from clipsae.sae.ops import ActiveSet

ARCHITECTURES: dict[str, type[SAE]] = {}


def register(config_class: type[SAEConfig]) -> Callable[[type[SAE]], type[SAE]]:
    """Class decorator adding an architecture under its config class's ``arch`` (the config
    registered itself when defined): one name for both, so the registries cannot disagree."""

    def add(cls: type[SAE]) -> type[SAE]:
        cls.arch = config_class.arch
        cls.config_class = config_class
        ARCHITECTURES[cls.arch] = cls
        return cls

    return add


@dataclass
class TrainLoss:
    """One batch's objective and the statistics the trainer logs and uses for dead-latent tracking.
    ``aux_loss`` is the unweighted auxiliary term (AuxK for the TopK family, the sparsity penalty
    for ReLU and JumpReLU); ``fire_counts`` (d_sae,) counts the rows of the batch on which each
    latent was active."""

    loss: Tensor
    mse: Tensor
    aux_loss: Tensor
    l0: Tensor
    fire_counts: Tensor

    @classmethod
    def from_codes(cls, loss: Tensor, mse: Tensor, aux_loss: Tensor, codes: Tensor) -> TrainLoss:
        """Statistics of dense (B, d_sae) codes, detached: they are logged, never optimised."""
        fire_counts = (codes.detach() > 0).sum(dim=0)
        return cls(loss, mse, aux_loss, fire_counts.sum().float() / len(codes), fire_counts)


class SAE(nn.Module, ABC):
    """Base sparse autoencoder: ``x_hat = decode(encode(x))``; the decoder rows start at unit norm
    (and stay there unless the recipe's ``unit_norm_decoder`` is off)."""

    arch: ClassVar[str]
    config_class: ClassVar[type[SAEConfig]]
    # Parameters with one slice per latent, and the axis it is on: what resampling re-initialises.
    latent_axes: ClassVar[dict[str, int]] = {"W_enc": 1, "b_enc": 0, "W_dec": 0}

    def __init__(self, cfg: SAEConfig, generator: torch.Generator | None = None) -> None:
        if not isinstance(cfg, self.config_class):
            raise TypeError(f"a {type(self).__name__} needs a {self.config_class.__name__}")
        super().__init__()
        self.cfg = cfg
        w_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=generator)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        # Tied initialisation (Gao et al. 2024): the encoder starts as the decoder's transpose,
        # which avoids dead latents at the start of training.
        self.W_enc = nn.Parameter(w_dec.t().clone())
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.W_dec = nn.Parameter(w_dec)
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))

    @property
    def scale(self) -> float:
        return self.cfg.input_scale

    def pre_acts(self, x: Tensor) -> Tensor:
        """Encoder pre-activations (B, d_sae), dense."""
        return torch.addmm(self.b_enc, x * self.scale - self.b_dec, self.W_enc)

    @abstractmethod
    def encode(self, x: Tensor) -> Tensor:
        """Non-negative codes (B, d_sae) as a dense tensor."""

    def reconstruct(self, codes: Tensor) -> Tensor:
        """Reconstruction in training units from dense codes (what the training losses compare)."""
        return torch.addmm(self.b_dec, codes, self.W_dec)

    def decode(self, codes: Tensor) -> Tensor:
        """Reconstruction in the original input units from dense codes."""
        return self.reconstruct(codes) / self.scale

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_codes(x)[1]

    def forward_with_codes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(codes, x_hat)`` in one encoder pass; architectures override it with a faster path."""
        codes = self.encode(x)
        return codes, self.decode(codes)

    def dense_codes(self, x: Tensor) -> Tensor | None:
        """Codes without the sparsity mechanism, for architectures where that is meaningful."""
        return None

    @abstractmethod
    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        """Objective on a batch of raw inputs; ``dead`` is the (d_sae,) mask of dead latents and
        ``progress`` the fraction of the run done after this step (for schedules such as a
        sparsity warm-up)."""

    def l1_penalty(self, codes: Tensor | ActiveSet) -> Tensor:
        """Mean over rows of the codes weighted by their decoder rows' norms: with unit-norm rows
        the plain L1, and without that constraint a penalty that growing a row to shrink its
        code cannot evade. ``codes`` are dense (B, d_sae) or an active set. Dense codes are
        summed over the batch before the weighting, which spares two passes over (B, d_sae)
        in the forward and two in the backward."""
        norms = self.W_dec.norm(dim=1)
        if isinstance(codes, ActiveSet):
            return (codes.values * norms[codes.indices]).sum() / codes.n_rows
        return codes.sum(dim=0) @ norms / len(codes)

    def calibrate(self, batches: Iterable[Tensor]) -> None:
        """Fit what inference needs beyond the weights on batches of raw training rows, once
        training is over. Most architectures need nothing; BatchTopK sets its threshold."""

    @torch.no_grad()
    def resample(self, latents: Tensor, directions: Tensor, enc_norm: float) -> None:
        """Re-point ``latents`` at unit ``directions`` (n, d_in) in training units, centred on
        ``b_dec``: the decoder row becomes the direction and the encoder column the same
        direction with norm ``enc_norm``, so the latent fires on the inputs it was taken from."""
        self.W_dec[latents] = directions
        self.W_enc[:, latents] = directions.t() * enc_norm
        self.b_enc[latents] = 0.0

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Project decoder rows back to unit norm (the constraint that fixes the code scale)."""
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def remove_parallel_grad(self) -> None:
        """Drop the part of each decoder row's gradient along that row: with unit-norm rows it
        only changes the norm, which ``normalize_decoder`` would undo anyway."""
        if self.W_dec.grad is None:
            return
        parallel = (self.W_dec.grad * self.W_dec).sum(dim=1, keepdim=True)
        self.W_dec.grad -= parallel * self.W_dec
