"""Every SAE architecture, imported, so that ``build_sae`` finds each one in the registry
whichever module reached it first (``clipsae.sae`` imports its modules lazily)."""

from __future__ import annotations

import torch

from clipsae.sae import jumprelu, matryoshka, relu, topk  # noqa: F401  (each registers its classes)
from clipsae.sae.base import ARCHITECTURES, SAE
from clipsae.sae.config import SAEConfig

__all__ = ["ARCHITECTURES", "build_sae"]


def build_sae(cfg: SAEConfig, generator: torch.Generator | None = None) -> SAE:
    """Instantiate the architecture of ``cfg`` with a fresh initialisation."""
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown SAE architecture {cfg.arch!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[cfg.arch](cfg, generator=generator)
