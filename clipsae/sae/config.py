"""Typed, frozen configurations: one per SAE architecture, and the architecture-independent
training recipe.

An architecture's config holds what rebuilds the model and what its objective needs (``k``, the
sparsity penalty and its warm-up, AuxK), and nothing of the other architectures, so a key that
does not apply cannot be passed silently (``clipsae.sae.entry`` names it). ``TrainConfig`` holds
the optimiser, the schedules (as fractions of the run, so they scale with its length), the data
handling and dead-latent resampling. A checkpoint's ``cfg.json`` is the architecture config's
``to_dict`` with the recipe beside it as provenance.

Every field is type-checked on construction (lists become tuples, integers given for floats
become floats), and the error names the field. ``from_dict`` is lenient on purpose: ``cfg.json``
also carries provenance, and files written before these classes hold every architecture's keys
(unused ones as ``null``).
"""

from __future__ import annotations

import json
import types
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Literal, Self, Union, get_args, get_origin, get_type_hints

Normalize = Literal["none", "mean_norm"]
DecayShape = Literal["cosine", "linear"]
DecoderBiasInit = Literal["geometric_median", "mean", "zeros"]
DictionaryInit = Literal["random", "data"]
LossWeighting = Literal["reverse", "uniform"]
Optimizer = Literal["adam", "adamw"]


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the annotation ``hint`` (the few kinds these configs use)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _coerce(name, value, inner)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{name} must be a list, got {value!r}")
        items = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(items) != len(value):
            raise ValueError(f"{name} must have {len(items)} items, got {value!r}")
        return tuple(_coerce(name, v, h) for v, h in zip(value, items, strict=True))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and isinstance(value, hint):
        if hint is int and isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return value
    kind = {float: "a number", int: "an integer", str: "a string", bool: "true or false"}[hint]
    raise ValueError(f"{name} must be {kind}, got {value!r}{_yaml_hint(value)}")


def _yaml_hint(value: Any) -> str:
    """YAML 1.1 (PyYAML) reads ``1e-3`` as a string, the commonest cause of a number as text."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return " (YAML reads 1e-3 as text: write 1.0e-3)"


def _increasing(name: str, values: tuple[int, ...], low: int, high: int) -> None:
    """Nested sizes must be distinct and ordered, or the nesting they describe is ambiguous."""
    if not values or list(values) != sorted(set(values)) or values[0] < low or values[-1] > high:
        raise ValueError(f"{name} must be strictly increasing within {low}..{high}, got {values}")


def _fraction(name: str, value: float, of: str = "the run") -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be a fraction of {of} in [0, 1], got {value}")


def warmup_value(*, start: float, final: float, warmup_frac: float, progress: float) -> float:
    """Linear from ``start`` to ``final`` over the first ``warmup_frac`` of the run, then
    ``final``; ``progress`` is the fraction of the run done after the current step."""
    if warmup_frac <= 0 or progress >= warmup_frac:
        return final
    return start + (final - start) * progress / warmup_frac


# Architecture name -> its config class, filled as each class below is defined (no torch needed,
# so config checks work without importing the models; ``clipsae.sae.base.register`` pairs each
# with its model).
ARCH_CONFIGS: dict[str, type[SAEConfig]] = {}


@dataclass(frozen=True, kw_only=True)
class _Config:
    """Type checking on construction, and the dict / JSON round trip."""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        self._validate()

    def _validate(self) -> None:
        """Checks beyond the types; subclasses extend it."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        """Build from a dict that may carry other keys (e.g. a whole ``cfg.json``)."""
        return cls(**{key: value for key, value in raw.items() if key in cls.field_names()})

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True, kw_only=True)
class SAEConfig(_Config):
    """What every architecture has: its sizes and ``input_scale``, the factor that maps raw inputs
    to the units the SAE was trained in (1.0 unless the trainer normalised them). ``arch`` (a key
    of ``clipsae.sae.ARCHITECTURES``) is the class's, not a field."""

    arch: ClassVar[str]
    # Set by the trainer or by sizing (expansion), never by a user's entry.
    DERIVED: ClassVar[tuple[str, ...]] = ("d_in", "d_sae", "input_scale")

    d_in: int
    d_sae: int
    input_scale: float = 1.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "arch" in vars(cls):
            ARCH_CONFIGS[cls.arch] = cls

    def _validate(self) -> None:
        if self.d_in <= 0 or self.d_sae <= 0:
            raise ValueError(f"d_in and d_sae must be positive, got {self.d_in}, {self.d_sae}")
        if not self.input_scale > 0:
            raise ValueError(f"input_scale must be positive, got {self.input_scale}")

    def bias_lr_factor(self) -> float:
        """The factor on the scheduled learning rate of ``b_enc`` and ``b_dec``: 1 unless the
        architecture sets another (``TopKConfig.bias_lr_scale``)."""
        return 1.0

    @classmethod
    def entry_keys(cls) -> tuple[str, ...]:
        """The keys a workflow ``saes`` entry may give for this architecture."""
        return tuple(key for key in cls.field_names() if key not in cls.DERIVED)

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SAEConfig:
        """The config of ``raw["arch"]`` from a ``cfg.json``, old or new: keys of other
        architectures and ``null`` values are skipped. Files written before the typed configs
        kept the objective's keys (``aux_k_coef``, ``l1_coef``, ...) in their ``train`` section,
        where they stay as provenance; the model loaded from them takes the defaults, which only
        training reads."""
        if cls is SAEConfig:
            return arch_config(raw["arch"]).from_dict(raw)
        return cls(**{k: v for k, v in raw.items() if k in cls.field_names() and v is not None})


@dataclass(frozen=True, kw_only=True)
class _WarmedPenaltyConfig(SAEConfig):
    """A sparsity penalty whose coefficient, the field ``PENALTY``, is reached linearly from the
    field ``<PENALTY>_start`` over the first ``sparsity_warmup_frac`` of the run, so that early
    training finds directions before being pushed to silence them. The subclasses declare the
    three fields, each among its architecture's keys in their documented order."""

    PENALTY: ClassVar[str]

    def _penalty(self) -> tuple[float, float]:
        """The coefficient's start and final values."""
        return getattr(self, f"{self.PENALTY}_start"), getattr(self, self.PENALTY)

    def _validate(self) -> None:
        super()._validate()
        if min(self._penalty()) < 0:
            raise ValueError(f"{self.PENALTY} and {self.PENALTY}_start must be >= 0")
        _fraction("sparsity_warmup_frac", self.sparsity_warmup_frac)

    def penalty_at(self, progress: float) -> float:
        """The penalty's coefficient once ``progress`` of the run is done."""
        start, final = self._penalty()
        return warmup_value(
            start=start, final=final, warmup_frac=self.sparsity_warmup_frac, progress=progress
        )


@dataclass(frozen=True, kw_only=True)
class _L1Config(_WarmedPenaltyConfig):
    """An L1 penalty on the codes, each weighted by its decoder row's norm (equal to the plain L1
    while the decoder is kept unit-norm), with coefficient ``l1_coef`` warmed up from
    ``l1_coef_start`` (see ``_WarmedPenaltyConfig``)."""

    PENALTY: ClassVar[str] = "l1_coef"

    l1_coef: float = 0.0
    l1_coef_start: float = 0.0
    sparsity_warmup_frac: float = 0.05

    l1_at = _WarmedPenaltyConfig.penalty_at


@dataclass(frozen=True, kw_only=True)
class TopKConfig(_L1Config):
    """TopK (Gao et al. 2024): ``k`` active latents per row; AuxK with ``aux_k`` latents
    (``None``: ``d_in // 2``) weighted ``aux_k_coef``. ``l1_coef`` (default 0) adds an L1
    penalty on top of the TopK sparsity.

    ``bias_lr_scale`` multiplies the learning rate of the biases ``b_enc`` and ``b_dec``. Adam
    moves every parameter by about ``lr`` per step whatever its size. Under the trainer's
    ``normalize: mean_norm`` the inputs, and with them both biases, have a root-mean-square of
    1 per dimension, while the unit-norm encoder and decoder directions have entries of
    ``1/sqrt(d_in)``: at one ``lr`` the biases moved ``sqrt(d_in)`` times slower than the
    weights, relative to their size, and a run of a few hundred steps left them short.
    ``sqrt(d_in)`` moves them alike (as on inputs of unit mean squared norm,
    dictionary_learning's normalisation) and gained the most in 78 steps on 384-d text
    activations, but ended 390 steps a hair behind one ``lr``; the default 8 kept most of the
    short run's gain and ended the long one ahead (bench/README.md, "The biases' learning
    rate"). Measured on TopK; BatchTopK and the Matryoshka variants inherit it, ReLU and
    JumpReLU keep one ``lr``."""

    arch: ClassVar[str] = "topk"

    k: int
    aux_k: int | None = None
    aux_k_coef: float = 1 / 32
    bias_lr_scale: float = 8.0

    def _validate(self) -> None:
        super()._validate()
        if not 0 < self.k <= self.d_sae:
            raise ValueError(f"k must be in 1..d_sae={self.d_sae}, got {self.k}")
        if self.aux_k is not None and self.aux_k <= 0:
            raise ValueError(f"aux_k must be positive (or null for d_in // 2), got {self.aux_k}")
        if self.aux_k_coef < 0:
            raise ValueError(f"aux_k_coef must be >= 0, got {self.aux_k_coef}")
        if not self.bias_lr_scale > 0:
            raise ValueError(f"bias_lr_scale must be positive, got {self.bias_lr_scale}")

    def bias_lr_factor(self) -> float:
        return self.bias_lr_scale


@dataclass(frozen=True, kw_only=True)
class BatchTopKConfig(TopKConfig):
    """BatchTopK: ``k`` per row on average; ``threshold_momentum`` is the exponential-average
    momentum of the threshold used while training (validation, checkpoints); the saved model's
    threshold is calibrated after the last step (``BatchTopKSAE.calibrate``)."""

    arch: ClassVar[str] = "batchtopk"

    threshold_momentum: float = 0.99

    def _validate(self) -> None:
        super()._validate()
        if not 0 <= self.threshold_momentum < 1:
            raise ValueError(f"threshold_momentum must be in [0, 1), got {self.threshold_momentum}")


@dataclass(frozen=True, kw_only=True)
class MatryoshkaKConfig(TopKConfig):
    """MSAE: the nested k values ``k_list`` (``k``, used at inference, defaults to their
    maximum), their losses weighted by ``loss_weighting``."""

    arch: ClassVar[str] = "matryoshka_k"

    k_list: tuple[int, ...]
    k: int | None = None
    loss_weighting: LossWeighting = "reverse"

    def _validate(self) -> None:
        _increasing("k_list", self.k_list, 1, self.d_sae)
        if self.k is None:
            object.__setattr__(self, "k", max(self.k_list))
        super()._validate()


@dataclass(frozen=True, kw_only=True)
class MatryoshkaPrefixConfig(BatchTopKConfig):
    """Matryoshka over dictionary prefixes: ``prefix_sizes`` strictly increasing and below
    ``d_sae`` (the whole dictionary is always the last prefix)."""

    arch: ClassVar[str] = "matryoshka_prefix"

    prefix_sizes: tuple[int, ...]

    def _validate(self) -> None:
        super()._validate()
        _increasing("prefix_sizes", self.prefix_sizes, 1, self.d_sae - 1)


@dataclass(frozen=True, kw_only=True)
class ReLUConfig(_L1Config):
    """ReLU with the L1 penalty (Bricken et al. 2023; Anthropic's April 2024 update)."""

    arch: ClassVar[str] = "relu"

    l1_coef: float = 0.01


@dataclass(frozen=True, kw_only=True)
class JumpReLUConfig(_WarmedPenaltyConfig):
    """JumpReLU: per-latent thresholds starting at ``jumprelu_init_threshold`` in training units
    (0.1: inputs are normalised to ~unit variance per dimension, and a threshold starting near 0
    takes hundreds of Adam steps of its log to rise to that scale); an L0 penalty ``l0_coef``
    reached linearly from ``l0_coef_start`` over the first ``sparsity_warmup_frac`` of the run;
    ``bandwidth`` the width of the straight-through rectangle kernel (training units)."""

    arch: ClassVar[str] = "jumprelu"
    PENALTY: ClassVar[str] = "l0_coef"

    jumprelu_init_threshold: float = 0.1
    l0_coef: float = 0.001
    l0_coef_start: float = 0.0
    sparsity_warmup_frac: float = 0.05
    bandwidth: float = 0.05

    def _validate(self) -> None:
        super()._validate()
        if not self.jumprelu_init_threshold > 0 or not self.bandwidth > 0:
            raise ValueError("jumprelu_init_threshold and bandwidth must be positive")

    l0_at = _WarmedPenaltyConfig.penalty_at


def arch_config(arch: str) -> type[SAEConfig]:
    """The config class of architecture ``arch``."""
    if arch not in ARCH_CONFIGS:
        raise ValueError(f"unknown SAE arch {arch!r} (allowed: {', '.join(sorted(ARCH_CONFIGS))})")
    return ARCH_CONFIGS[arch]


@dataclass(frozen=True, kw_only=True)
class TrainConfig(_Config):
    """The architecture-independent training recipe. Defaults follow Gao et al. 2024 (Scaling and
    evaluating sparse autoencoders) where they apply: Adam, data-driven ``b_dec``, tied random
    dictionary, unit-norm decoder rows.

    Optimiser: ``optimizer`` ``adam`` or ``adamw``; ``weight_decay`` applies to the weight
    matrices only, not to biases or thresholds (Adam: as an L2 term in the gradient; AdamW:
    decoupled, ``lr * weight_decay`` of each weight per step).

    Learning rate, as fractions of the run so that a schedule keeps its shape whatever the
    number of steps: linear warm-up to ``lr`` over the first ``warmup_frac``, constant, then a
    ``lr_schedule`` (cosine or linear) decay to ``lr * lr_end_frac`` over the last
    ``decay_frac`` (1: from the end of the warm-up on). The default decays over the last 20%:
    a run of a few hundred Adam steps is short of learning rate, and a decay from the end of
    the warm-up halved its mean (bench/README.md, "SAE training on real activations").

    ``grad_clip`` bounds the norm of the gradient of the squared error summed over the ``d_in``
    input dimensions (the loss of Gao et al. and dictionary_learning), i.e. ``d_in`` times the
    element-mean loss the models return; with ``normalize: mean_norm`` the training units have
    a mean squared norm of ``d_in``, so the bound means the same on any data. Clipping the
    element-mean gradient at 1 instead never acted (gradients ``d_in`` times smaller), and the
    clip is part of what makes the decay help.

    ``unit_norm_decoder`` keeps decoder rows at unit norm (the constraint that fixes the code
    scale; the L1 penalties weigh codes by row norms, so without it shrinking codes and growing
    rows does not cheat them). ``dead_steps_threshold`` counts optimiser steps without a single
    firing; it must span more rows than the gaps between a rare latent's firings (on small
    data, more than an epoch), or AuxK and resampling pull live latents away from the rows they
    fire on (bench/README.md, "The dead-latent window"). ``val_every`` and ``checkpoint_every``
    are in steps; ``stats_rows`` caps the rows used to estimate the normalisation constant and
    the decoder bias (and to calibrate BatchTopK's threshold).

    ``max_in_memory_bytes`` (the cap) bounds the activation rows the trainer holds at any one
    time, working copies included (``clipsae.sae.data.MemoryPlan``): half of it for the training
    rows (all of them when they fit in that half, else a shuffle buffer of
    ``shuffle_buffer_rows``, cut to fit), a quarter for the ``val_rows`` validation rows and a
    quarter for the ``stats_rows`` statistics sample (both cut to fit), each at least one
    batch. It does not bound the model, its gradients and optimiser state, one batch's
    activations through the model, the libraries, or arrays passed in by the caller; those do
    not grow with the data. The cut sizes are logged when training starts.

    ``dict_init``: ``random`` is the tied random initialisation; ``data`` (models with ``k``)
    starts each decoder row at a distinct training row centred on ``b_dec``, and the encoder at
    the decoder's transpose over ``k``, so the k first codes add up to about one input. On
    activations whose variance fills few dimensions, random directions in ``d_in`` dimensions
    barely reach the data, and half of them never fire (bench/README.md, "Dead latents").

    Dead-latent resampling (off unless ``resample_every`` is set): every ``resample_every`` steps
    during the first ``resample_until`` fraction of training, latents dead by
    ``dead_steps_threshold`` are re-pointed at poorly reconstructed inputs of the batch, with
    encoder norm ``resample_enc_scale`` times the mean norm of the live encoder columns.
    """

    lr: float = 4e-4
    batch_size: int = 4096
    epochs: int = 1
    seed: int = 0
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0
    warmup_frac: float = 0.05
    decay_frac: float = 0.2
    lr_schedule: DecayShape = "cosine"
    lr_end_frac: float = 0.0
    grad_clip: float | None = 1.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 6.25e-10
    unit_norm_decoder: bool = True
    dead_steps_threshold: int = 256
    normalize: Normalize = "mean_norm"
    b_dec_init: DecoderBiasInit = "geometric_median"
    dict_init: DictionaryInit = "random"
    stats_rows: int = 65536
    val_every: int = 200
    val_rows: int = 65536
    checkpoint_every: int = 500
    shuffle_buffer_rows: int = 262144
    max_in_memory_bytes: int = 4 << 30
    resample_every: int | None = None
    resample_until: float = 0.5
    resample_enc_scale: float = 1.0

    def _validate(self) -> None:
        if self.lr <= 0 or self.batch_size <= 0 or self.epochs <= 0:
            raise ValueError("lr, batch_size and epochs must be positive")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("warmup_frac", "decay_frac", "resample_until"):
            _fraction(name, getattr(self, name))
        _fraction("lr_end_frac", self.lr_end_frac, of="lr")
        if self.resample_every is not None and self.resample_every <= 0:
            raise ValueError("resample_every must be positive (or null to disable resampling)")
        for name in ("val_every", "checkpoint_every", "dead_steps_threshold", "stats_rows"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


def check_compatible(cfg: SAEConfig, tcfg: TrainConfig) -> None:
    """Recipe settings that need a particular architecture."""
    if tcfg.dict_init == "data" and not isinstance(cfg, TopKConfig):
        raise ValueError(f"dict_init 'data' needs a model with k; {cfg.arch!r} has none")
