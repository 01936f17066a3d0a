"""Device choice: the allotted GPU when torch can use it, else the CPU with a warning."""

from __future__ import annotations

import warnings

import pytest
import torch

from clipsae.runtime.device import pick_device

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


def test_auto_without_an_allotted_gpu_is_silent_cpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_device("auto") == torch.device("cpu")


def test_an_allotted_gpu_torch_cannot_use_warns_and_falls_back(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.warns(UserWarning, match="CUDA_VISIBLE_DEVICES=0"):
        assert pick_device("auto") == torch.device("cpu")
    with pytest.warns(UserWarning, match="not available"):
        assert pick_device("cuda") == torch.device("cpu")
