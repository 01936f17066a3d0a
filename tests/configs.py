"""Workflow config pieces shared by the tests that run or plan the real Snakefile."""

from __future__ import annotations

from typing import Any


def tiny_built_model() -> dict[str, Any]:
    """The smallest model entry the schema allows: the tiny ViT built in-workflow on 64 images
    for 2 steps, one layer; a fresh dict each call, so a test can edit its copy."""
    return {
        "arch": "clipsae-tiny-vit",
        "pretrained": "build",
        "layers": ["final"],
        "batch_size": 64,
        "build": {"n_images": 64, "steps": 2, "batch_size": 32, "seed": 0},
    }


def detection_sampling(**overrides: int):
    """``interpret.scoring``'s defaults as a ``DetectionSampling``, with ``overrides``: the
    settings classes that the workflow fills from the schema have no defaults of their own."""
    from clipsae.config.validate import schema_defaults
    from clipsae.interpret.scoring import DetectionSampling

    return DetectionSampling(**{**schema_defaults("interpret", "scoring"), **overrides})


def weak_sampling(**overrides):
    """``features``' default contrast-row sampling as a ``WeakSampling``, with ``overrides``."""
    from clipsae.config.validate import schema_defaults
    from clipsae.interpret.features import WeakSampling

    features = schema_defaults("features")
    fields = {"n": features["n_weak"], "quantile": features["weak_quantile"], **overrides}
    return WeakSampling(**fields)
