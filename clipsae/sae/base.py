"""The SAE interface every architecture implements, and the registry that maps ``cfg.arch`` to it.

Inputs are taken and returned in their original units: ``input_scale`` (from the config) maps them
to the training units internally, so callers never see the normalisation. ``b_dec`` lives in the
training units: it is subtracted before encoding and added back after decoding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from clipsae.sae.config import SAEConfig, TrainConfig

ARCHITECTURES: dict[str, type[SAE]] = {}


def register(name: str) -> Callable[[type[SAE]], type[SAE]]:
    """Class decorator adding an architecture under ``name`` (the value of ``SAEConfig.arch``)."""

    def add(cls: type[SAE]) -> type[SAE]:
        cls.arch = name
        ARCHITECTURES[name] = cls
        return cls

    return add


def build_sae(cfg: SAEConfig, generator: torch.Generator | None = None) -> SAE:
    """Instantiate the architecture named by ``cfg.arch`` with a fresh initialisation."""
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown SAE architecture {cfg.arch!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[cfg.arch](cfg, generator=generator)


@dataclass
class TrainLoss:
    """One batch's objective and the statistics the trainer logs and uses for dead-latent tracking.
    ``fire_counts`` (d_sae,) counts the rows of the batch on which each latent was active."""

    loss: Tensor
    mse: Tensor
    aux_loss: Tensor
    l0: Tensor
    fire_counts: Tensor


class SAE(nn.Module, ABC):
    """Base sparse autoencoder: ``x_hat = decode(encode(x))`` with a unit-norm-row decoder."""

    arch: ClassVar[str]

    def __init__(self, cfg: SAEConfig, generator: torch.Generator | None = None) -> None:
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

    def decode(self, codes: Tensor) -> Tensor:
        """Reconstruction in the original input units from dense codes."""
        return torch.addmm(self.b_dec, codes, self.W_dec) / self.scale

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
    def train_loss(self, x: Tensor, dead: Tensor, tcfg: TrainConfig) -> TrainLoss:
        """Objective on a batch of raw inputs; ``dead`` is the (d_sae,) mask of dead latents."""

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
