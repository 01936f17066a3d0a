"""Where model weights live: built ones in the results, shipped ones inside the package.

Torch-free, so the Snakefile can import it while parsing. ``pretrained: shipped`` loads the
weights that the project built with its own rule (``pretrained: build``) and committed in fp16
beside a record of how they were built (``<arch>.json``, written by ``clipsae ship-clip``); the
demo then runs without its longest job, and ``tests/test_shipped_weights.py`` ties the file to
its recorded settings.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_FILE = "open_clip_model.safetensors"
BUILD_REPORT = "build.json"
SHIPPED = "shipped"
SHIPPED_DIR = Path(__file__).parent / "shipped"


def built_weights(models_dir: Path, model: str) -> Path:
    """Where the workflow puts the weights of a ``pretrained: build`` model."""
    return Path(models_dir) / model / WEIGHTS_FILE


def built_record(models_dir: Path, model: str) -> Path:
    """The ``build.json`` beside ``built_weights``."""
    return Path(models_dir) / model / BUILD_REPORT


def shipped_weights(arch: str) -> Path:
    """The shipped weights of ``arch``; a clear error where the package ships none."""
    path = SHIPPED_DIR / f"{arch}.safetensors"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in SHIPPED_DIR.glob("*.safetensors"))) or "none"
        raise FileNotFoundError(
            f"pretrained: {SHIPPED} has no weights for {arch} (shipped: {have}); "
            "build them with pretrained: build and clipsae ship-clip"
        )
    return path


def shipped_record(arch: str) -> Path:
    """The build record beside ``shipped_weights(arch)``: the build's ``build.json`` plus how
    the file was made from it."""
    return SHIPPED_DIR / f"{arch}.json"
