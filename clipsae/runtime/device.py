"""The one place a device is chosen for every step that runs a model or an SAE.

A step calls ``pick_device`` once and hands the result to both the model it loads and the
inputs it feeds, so the two cannot end up on different devices.
"""

from __future__ import annotations

import logging
import os
import warnings

import torch

log = logging.getLogger(__name__)

# What a step accepts as its ``device``: a name (``auto``, ``cpu``, ``cuda:1``) or a picked device.
DeviceSpec = str | torch.device | None

# Where the setting comes from, for error messages: the workflow key and the subcommands' flag.
SETTING = "device (config key `device`, flag --device)"


def pick_device(requested: DeviceSpec = "auto") -> torch.device:
    """``auto``: CUDA when torch can use it, else the CPU (logged); anything else is honoured.

    An explicit ``cuda`` that torch cannot use is an error rather than a silent fallback: the
    user asked for a GPU, and a CPU run of a GPU-sized job is hours of the wrong thing.
    SLURM exposes the allotted card via CUDA_VISIBLE_DEVICES; a card allotted but unusable under
    ``auto`` is worth a warning, since the job then runs far slower than planned.
    """
    if requested is None or str(requested) == "auto":
        return _auto()
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise ValueError(
            f"{SETTING}: {str(requested)!r} is not a torch device (use auto, cpu or cuda)"
        ) from exc
    if device.type == "cuda":
        _check_cuda(device)
    return device


def _auto() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible not in ("", "-1"):
        warnings.warn(
            f"a GPU was allotted (CUDA_VISIBLE_DEVICES={visible}) but torch cannot use it: "
            "running on CPU",
            stacklevel=3,
        )
    log.info("device auto: no CUDA device available to torch, running on CPU")
    return torch.device("cpu")


def _check_cuda(device: torch.device) -> None:
    if not torch.cuda.is_available():
        raise ValueError(
            f"{SETTING} is {str(device)!r} but torch {torch.__version__} sees no CUDA device "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
            "use auto to fall back to the CPU"
        )
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ValueError(
            f"{SETTING} is {str(device)!r} but only {count} CUDA device(s) are visible "
            f"(cuda:0..cuda:{count - 1})"
        )
