"""Sparse autoencoders: configs, architectures (registry keyed by ``SAEConfig.arch``), checkpoint
I/O and the trainer."""

from clipsae.sae.base import ARCHITECTURES, SAE, TrainLoss, build_sae, register
from clipsae.sae.config import SAEConfig, TrainConfig
from clipsae.sae.io import load_sae, save_sae
from clipsae.sae.jumprelu import JumpReLUSAE
from clipsae.sae.matryoshka import MatryoshkaKSAE, MatryoshkaPrefixSAE
from clipsae.sae.relu import ReLUSAE
from clipsae.sae.topk import BatchTopKSAE, TopKSAE
from clipsae.sae.train import train_sae

__all__ = [
    "ARCHITECTURES",
    "SAE",
    "BatchTopKSAE",
    "JumpReLUSAE",
    "MatryoshkaKSAE",
    "MatryoshkaPrefixSAE",
    "ReLUSAE",
    "SAEConfig",
    "TopKSAE",
    "TrainConfig",
    "TrainLoss",
    "build_sae",
    "load_sae",
    "register",
    "save_sae",
    "train_sae",
]
