"""Sparse autoencoders: typed configs (one per architecture), the architectures (registry keyed by
the config's ``arch``), checkpoint I/O and the trainer."""

from clipsae.sae.base import ARCHITECTURES, SAE, TrainLoss, build_sae, register
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
