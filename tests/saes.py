"""Hand-built SAEs with known reconstructions, and trained ones read back, shared by the
evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clipsae.sae import (
    SAE,
    ReLUConfig,
    ReLUSAE,
    SAEConfig,
    TopKConfig,
    TopKSAE,
    TrainConfig,
    load_sae,
    train_sae,
)


def identity_sae(d: int) -> TopKSAE:
    """A real TopK SAE that reconstructs exactly: decoder rows [I; -I] carry x+ and x-.

    With b_dec = 0 and W_enc = [I, -I], the ReLU codes are (x)+ and (-x)+; at most d of them are
    positive, so k = d keeps all of them and decode gives x back.
    """
    sae = TopKSAE(TopKConfig(d_in=d, d_sae=2 * d, k=d))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_dec.copy_(torch.cat([eye, -eye]))
        sae.W_enc.copy_(torch.cat([eye, -eye]).T)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


def constant_sae(value: np.ndarray) -> ReLUSAE:
    """A ReLU SAE whose codes are always 0, so every reconstruction is ``b_dec = value``
    (zeros: the zero SAE)."""
    d = len(value)
    sae = ReLUSAE(ReLUConfig(d_in=d, d_sae=4))
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.b_enc.fill_(-1.0)
        sae.b_dec.copy_(torch.as_tensor(value, dtype=torch.float32))
    return sae.eval()


def trained_sae(x: np.ndarray, cfg: SAEConfig, tcfg: TrainConfig, directory: Path) -> SAE:
    """An SAE trained on ``x`` into ``directory`` and read back from there, as an evaluation
    reads a trained one."""
    train_sae(x, cfg, tcfg, directory)
    return load_sae(directory)
