"""Device choice shared by every step that can use a GPU."""

from __future__ import annotations

import warnings

import torch


def pick_device(requested: str | torch.device | None = "auto") -> torch.device:
    """CUDA when present (SLURM exposes the allotted card via CUDA_VISIBLE_DEVICES), else CPU.

    An explicit ``cuda`` on a machine without one falls back to CPU with a warning rather than
    failing, so a job landing on a CPU node still finishes.
    """
    if requested is None or str(requested) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn("CUDA was requested but is not available: running on CPU", stacklevel=2)
        return torch.device("cpu")
    return device
