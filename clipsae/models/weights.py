"""Where built model weights live; torch-free so the Snakefile can import it while parsing."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_FILE = "open_clip_model.safetensors"


def built_weights(models_dir: Path, model: str) -> Path:
    """Where the workflow puts the weights of a ``pretrained: build`` model."""
    return Path(models_dir) / model / WEIGHTS_FILE
