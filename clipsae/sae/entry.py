"""A workflow ``saes`` entry to the SAE model config and training recipe, checked in one place."""

from __future__ import annotations

from dataclasses import fields

from clipsae.sae import ARCHITECTURES
from clipsae.sae.config import SAEConfig, TrainConfig

# Keys of a `saes` entry that size the model rather than configure it.
_SIZE_KEYS = ("expansion", "d_sae")


def sae_configs(entry: dict, d_in: int) -> tuple[SAEConfig, TrainConfig]:
    """Split a ``saes`` entry into the model config and the training recipe.

    Every key must belong to one of them: a misspelt hyper-parameter silently falling back to
    its default is the kind of mistake that costs a week of runs.
    """
    model_keys = {f.name for f in fields(SAEConfig)} - {"d_in", "d_sae", "input_scale"}
    train_keys = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(entry) - model_keys - train_keys - set(_SIZE_KEYS))
    if unknown:
        allowed = sorted(model_keys | train_keys | set(_SIZE_KEYS))
        raise ValueError(f"unknown key(s) {unknown} (allowed: {', '.join(allowed)})")
    if ("expansion" in entry) == ("d_sae" in entry):
        raise ValueError("give exactly one of 'expansion' (d_sae = expansion x d_in) or 'd_sae'")
    d_sae = int(entry["d_sae"]) if "d_sae" in entry else round(entry["expansion"] * d_in)
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, **{k: v for k, v in entry.items() if k in model_keys})
    return cfg, TrainConfig(**{k: v for k, v in entry.items() if k in train_keys})


def check_sae_spec(entry: dict, d_in: int) -> None:
    """Raise if ``entry`` cannot make an SAE on ``d_in``-wide activations (e.g. k > d_sae)."""
    if entry["arch"] not in ARCHITECTURES:
        raise ValueError(
            f"unknown SAE arch {entry['arch']!r} (allowed: {', '.join(sorted(ARCHITECTURES))})"
        )
    sae_configs(entry, d_in)
