"""A workflow ``saes`` entry (or the ``train-sae`` command line) to the typed architecture config
and training recipe, checked in one place."""

from __future__ import annotations

from typing import Any

from clipsae.sae.config import (
    ARCH_CONFIGS,
    SAEConfig,
    TrainConfig,
    arch_config,
    check_compatible,
)

# Keys of a `saes` entry that size the model rather than configure it.
_SIZE_KEYS = ("expansion", "d_sae")
# Keys of earlier versions, with what replaced them, so an old config gets a useful message.
_RENAMED = {
    "warmup_steps": "warmup_frac (a fraction of the run, e.g. 0.05)",
    "sparsity_warmup_steps": "sparsity_warmup_frac (a fraction of the run, e.g. 0.05)",
}


def _bad_key(key: str, arch: str) -> str:
    if key in _RENAMED:
        return f"key {key!r} is now {_RENAMED[key]}"
    owners = sorted(a for a, cls in ARCH_CONFIGS.items() if key in cls.entry_keys())
    if owners:
        return f"key {key!r} does not apply to arch {arch!r} but to {', '.join(owners)}"
    return f"unknown key {key!r} for arch {arch!r}"


def sae_configs(entry: dict[str, Any], d_in: int) -> tuple[SAEConfig, TrainConfig]:
    """Split a ``saes`` entry into the architecture's config and the training recipe.

    Every key must belong to one of them: a misspelt hyper-parameter, or one of another
    architecture, silently falling back to its default is the kind of mistake that costs a week
    of runs.
    """
    cls = arch_config(entry.get("arch"))
    model_keys, train_keys = set(cls.entry_keys()), set(TrainConfig.field_names())
    allowed = {"arch", *_SIZE_KEYS, *model_keys, *train_keys}
    bad = [_bad_key(key, cls.arch) for key in entry if key not in allowed]
    if bad:
        raise ValueError(f"{'; '.join(bad)} (allowed: {', '.join(sorted(allowed))})")
    if ("expansion" in entry) == ("d_sae" in entry):
        raise ValueError("give exactly one of 'expansion' (d_sae = expansion x d_in) or 'd_sae'")
    d_sae = entry["d_sae"] if "d_sae" in entry else round(entry["expansion"] * d_in)
    cfg = cls(d_in=d_in, d_sae=d_sae, **{k: v for k, v in entry.items() if k in model_keys})
    tcfg = TrainConfig(**{k: v for k, v in entry.items() if k in train_keys})
    check_compatible(cfg, tcfg)
    return cfg, tcfg


def check_sae_spec(entry: dict[str, Any], d_in: int) -> None:
    """Raise if ``entry`` cannot make an SAE on ``d_in``-wide activations (e.g. k > d_sae)."""
    sae_configs(entry, d_in)
