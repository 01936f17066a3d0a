"""SAELens-style checkpoints: ``sae_weights.safetensors``, ``cfg.json``, ``sparsity.safetensors``.

No pickle anywhere, so a checkpoint from an untrusted source cannot run code when loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from clipsae import __version__
from clipsae.runtime.atomic import atomic_output, atomic_write_json
from clipsae.sae.base import SAE
from clipsae.sae.config import SAEConfig
from clipsae.sae.zoo import build_sae

WEIGHTS_FILE = "sae_weights.safetensors"
CFG_FILE = "cfg.json"
SPARSITY_FILE = "sparsity.safetensors"


def atomic_save_tensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    """``safetensors`` save through a temporary name so readers never see half a file."""
    with atomic_output(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata)


def save_sae(
    sae: SAE,
    directory: Path,
    firing_frequency: torch.Tensor | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write weights and config; ``extra`` (e.g. the training recipe and data) goes into cfg.json.

    ``firing_frequency`` (fraction of rows on which each latent fired) is stored in
    ``sparsity.safetensors`` as SAELens does: key ``sparsity`` holds log10 of it, and
    ``firing_frequency`` the fraction itself.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(dict(sae.state_dict()), directory / WEIGHTS_FILE)
    cfg = {**(extra or {}), **sae.cfg.to_dict(), "clipsae_version": __version__}
    atomic_write_json(cfg, directory / CFG_FILE)
    if firing_frequency is not None:
        freq = firing_frequency.float()
        sparsity = {"sparsity": torch.log10(freq + 1e-10), "firing_frequency": freq}
        atomic_save_tensors(sparsity, directory / SPARSITY_FILE)


def load_sae(directory: Path, device: str | torch.device | None = None) -> SAE:
    """Rebuild the SAE saved by ``save_sae`` (strict: missing or unexpected tensors are errors)."""
    directory = Path(directory)
    cfg_path = directory / CFG_FILE
    if not cfg_path.exists():
        raise FileNotFoundError(f"{cfg_path} is missing: {directory} is not a saved SAE")
    sae = build_sae(SAEConfig.from_json(cfg_path.read_text()))
    sae.load_state_dict(load_file(directory / WEIGHTS_FILE))
    return sae.to(device) if device is not None else sae
