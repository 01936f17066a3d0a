"""Device choice shared by every step that can use a GPU."""

from __future__ import annotations

import os
import warnings

import torch


def pick_device(requested: str | torch.device | None = "auto") -> torch.device:
    """CUDA when present (SLURM exposes the allotted card via CUDA_VISIBLE_DEVICES), else CPU.

    A job that was given a GPU it cannot use, or an explicit ``cuda`` on a machine without one,
    falls back to CPU with a warning rather than failing, so the job still finishes.
    """
    if requested is None or str(requested) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if os.environ.get("CUDA_VISIBLE_DEVICES", "").strip() not in ("", "-1"):
            warnings.warn(
                f"a GPU was allotted (CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}) "
                "but torch cannot use it: running on CPU",
                stacklevel=2,
            )
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn("CUDA was requested but is not available: running on CPU", stacklevel=2)
        return torch.device("cpu")
    return device
