"""Sparse autoencoders: typed configs (one per architecture), the architectures (registry keyed by
the config's ``arch``), checkpoint I/O and the trainer.

The package imports its modules on first use of a name (PEP 562), so the torch-free config checks
(``clipsae.sae.config``, ``clipsae.sae.entry``) run while the Snakefile is parsed without paying
for a torch import. The ``TYPE_CHECKING`` imports name where each export lives, for type checkers
and for the code fingerprint's import walk (``clipsae.runtime.fingerprint``), which reads them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipsae.sae.base import SAE, TrainLoss, register
    from clipsae.sae.config import (
        ARCH_CONFIGS,
        BatchTopKConfig,
        JumpReLUConfig,
        MatryoshkaKConfig,
        MatryoshkaPrefixConfig,
        ReLUConfig,
        SAEConfig,
        TopKConfig,
        TrainConfig,
    )
    from clipsae.sae.io import load_sae, save_sae
    from clipsae.sae.jumprelu import JumpReLUSAE
    from clipsae.sae.matryoshka import MatryoshkaKSAE, MatryoshkaPrefixSAE
    from clipsae.sae.relu import ReLUSAE
    from clipsae.sae.topk import BatchTopKSAE, TopKSAE
    from clipsae.sae.train import train_sae
    from clipsae.sae.zoo import ARCHITECTURES, build_sae

__all__ = [
    "ARCHITECTURES",
    "ARCH_CONFIGS",
    "SAE",
    "BatchTopKConfig",
    "BatchTopKSAE",
    "JumpReLUConfig",
    "JumpReLUSAE",
    "MatryoshkaKConfig",
    "MatryoshkaKSAE",
    "MatryoshkaPrefixConfig",
    "MatryoshkaPrefixSAE",
    "ReLUConfig",
    "ReLUSAE",
    "SAEConfig",
    "TopKConfig",
    "TopKSAE",
    "TrainConfig",
    "TrainLoss",
    "build_sae",
    "load_sae",
    "register",
    "save_sae",
    "train_sae",
]
# Searched in this order for an exported name: the torch-free configs first, so that reading a
# config class imports no torch.
_MODULES = ("config", "base", "zoo", "io", "train", "topk", "relu", "jumprelu", "matryoshka")


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in _MODULES:
            home = importlib.import_module(f"{__name__}.{module}")
            if hasattr(home, name):
                globals()[name] = value = getattr(home, name)
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
