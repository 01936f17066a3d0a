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


def schema_defaults(*keys: str) -> dict[str, Any]:
    """The defaults the config schema gives the object at ``keys`` (e.g. ``"interpret",
    "scoring"``): the settings classes that the workflow fills from the schema have none."""
    from clipsae.config.validate import load_schema

    node = load_schema()
    for key in keys:
        node = node["properties"][key]
    return {name: sub["default"] for name, sub in node["properties"].items() if "default" in sub}


def detection_sampling(**overrides: int):
    """``interpret.scoring``'s defaults as a ``DetectionSampling``, with ``overrides``."""
    from clipsae.interpret.scoring import DetectionSampling

    return DetectionSampling(**{**schema_defaults("interpret", "scoring"), **overrides})
