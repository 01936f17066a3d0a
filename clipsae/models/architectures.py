"""Architecture facts (configs, depths, layer names and widths) without importing open_clip.

The config checks run at every Snakefile parse, where importing open_clip (and with it torch and
torchvision) costs seconds. open_clip's registry is one JSON file per architecture in its
``model_configs`` folder, plus the folders added to it (the project's own tiny architectures),
so this reads the same files, found without importing the package. Names with a scheme
(``hf-hub:``, ``local-dir:``) still go through open_clip, which resolves them.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
from functools import cache
from pathlib import Path

from clipsae.models.weights import SHIPPED, shipped_weights

EMBEDDED_CONFIG_DIR = Path(__file__).parent / "model_configs"
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
_BLOCK = re.compile(r"^block(\d+)$")
_REQUIRED_KEYS = ("embed_dim", "vision_cfg", "text_cfg")  # what open_clip's registry requires
# The seed of random weights (``pretrained: none``) when a model entry gives none.
DEFAULT_SEED = 0


@cache
def _registry() -> dict[str, dict]:
    """Architecture name -> config, as open_clip builds it (later folders override earlier)."""
    spec = importlib.util.find_spec("open_clip")
    folders = [Path(p) / "model_configs" for p in (spec.submodule_search_locations or [])]
    configs = {}
    for folder in [*folders, EMBEDDED_CONFIG_DIR]:
        for path in sorted(folder.glob("*.json")):
            cfg = json.loads(path.read_text())
            if all(key in cfg for key in _REQUIRED_KEYS):
                configs[path.stem] = cfg
    return configs


def architecture_config(arch: str) -> dict:
    """The open_clip config of ``arch``; raises naming the known architectures if unknown."""
    if ":" in arch:
        import open_clip

        cfg = open_clip.get_model_config(arch)
    else:
        cfg = _registry().get(arch)
    if cfg is None:
        known = ", ".join(sorted(_registry()))
        raise ValueError(f"unknown open_clip architecture {arch!r}; known: {known}")
    return json.loads(json.dumps(cfg))  # a copy: callers may edit it


def vision_depth(arch: str) -> int:
    layers = architecture_config(arch)["vision_cfg"]["layers"]
    if not isinstance(layers, int):
        raise ValueError(
            f"{arch} has a non-transformer vision tower; only ViT models have block layers"
        )
    return layers


def parse_layer(layer: str, arch: str) -> int | None:
    """``final`` -> None, ``blockN`` -> N, validated against the depth of ``arch``."""
    if layer == "final":
        return None
    match = _BLOCK.match(layer)
    if not match:
        raise ValueError(f"layer {layer!r} is neither 'final' nor 'block<N>'")
    block, depth = int(match.group(1)), vision_depth(arch)
    if block >= depth:
        raise ValueError(
            f"layer {layer!r} is out of range: {arch} has blocks block0..block{depth - 1}"
        )
    return block


def layer_width(arch: str, layer: str) -> int:
    cfg = architecture_config(arch)
    return cfg["embed_dim"] if parse_layer(layer, arch) is None else cfg["vision_cfg"]["width"]


def is_checkpoint_path(pretrained: str) -> bool:
    return pretrained.endswith(CHECKPOINT_SUFFIXES) or os.path.sep in pretrained


@cache
def _declared_tags() -> dict[str, tuple[str, ...]] | None:
    """Architecture -> pretrained tags, read from the ``_PRETRAINED`` table of open_clip's
    ``pretrained.py`` as syntax (each value a module-level ``dict(tag=...)`` or an inline one),
    so a parse checks tags without importing open_clip (seconds, with torch); None when the
    file is not laid out that way, and the caller asks open_clip itself."""
    spec = importlib.util.find_spec("open_clip")
    source = Path(next(iter(spec.submodule_search_locations or []), "")) / "pretrained.py"
    if not source.is_file():
        return None
    assigned = {
        node.targets[0].id: node.value
        for node in ast.parse(source.read_text()).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }

    def tags(value: ast.expr) -> tuple[str, ...] | None:
        value = assigned.get(value.id) if isinstance(value, ast.Name) else value
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "dict":
            return tuple(kw.arg for kw in value.keywords if kw.arg is not None)
        if isinstance(value, ast.Dict) and all(isinstance(k, ast.Constant) for k in value.keys):
            return tuple(k.value for k in value.keys)
        return None

    table = assigned.get("_PRETRAINED")
    if not isinstance(table, ast.Dict):
        return None
    out = {}
    for key, value in zip(table.keys, table.values, strict=True):
        found = tags(value)
        if not isinstance(key, ast.Constant) or found is None:
            return None
        out[key.value] = found
    return out


def check_pretrained(arch: str, pretrained: str) -> None:
    """Fail early on a tag open_clip does not know for ``arch``: a typo would cost a job.
    Only a tag needs open_clip's list; ``none``, ``shipped`` and checkpoint paths are checked
    without it."""
    architecture_config(arch)
    if pretrained == SHIPPED:
        shipped_weights(arch)
        return
    if pretrained == "none" or is_checkpoint_path(pretrained):
        return
    declared = _declared_tags()
    if declared is not None and pretrained in declared.get(arch, ()):
        return
    import open_clip  # an unlisted name or tag: open_clip decides (quickgelu variants, hf-hub)

    tags = open_clip.list_pretrained_tags_by_model(arch)
    if pretrained not in tags:
        raise ValueError(
            f"pretrained tag {pretrained!r} is not known for {arch}; "
            f"known tags: {', '.join(tags) or 'none'}; or give a checkpoint path, or 'none'"
        )


def check_seed(pretrained: str, seed: int) -> None:
    """A seed only decides random weights: elsewhere a non-default one would be ignored silently."""
    if seed != DEFAULT_SEED and pretrained != "none":
        raise ValueError(
            f"seed {seed} has no effect with pretrained {pretrained!r}: it seeds only the random "
            "weights of pretrained: none (a built model has build.seed)"
        )
