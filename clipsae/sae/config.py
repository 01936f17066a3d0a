"""Model and training configurations, kept apart so a checkpoint's ``cfg.json`` describes the model
on its own while the training recipe travels with it as provenance.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Normalize = Literal["none", "mean_norm"]
Schedule = Literal["cosine", "linear", "constant"]
DecoderBiasInit = Literal["geometric_median", "mean", "zeros"]
DictionaryInit = Literal["random", "data"]
LossWeighting = Literal["reverse", "uniform"]


def _increasing(name: str, values: list[int], low: int, high: int) -> list[int]:
    """Nested sizes must be distinct and ordered, or the nesting they describe is ambiguous."""
    values = [int(v) for v in values]
    if not values or values != sorted(set(values)) or values[0] < low or values[-1] > high:
        raise ValueError(f"{name} must be strictly increasing within {low}..{high}, got {values}")
    return values


def _from_dict(cls: type, raw: dict[str, Any]) -> Any:
    """Build ``cls`` from a dict that may carry extra keys (e.g. a whole ``cfg.json``)."""
    names = {f.name for f in fields(cls)}
    return cls(**{key: value for key, value in raw.items() if key in names})


@dataclass
class SAEConfig:
    """What is needed to rebuild an SAE: the architecture (a key of ``ARCHITECTURES``), its sizes,
    and ``input_scale``, the factor that maps raw inputs to the units the SAE was trained in
    (1.0 unless the trainer normalised them).

    Architecture-specific keys (``None`` where unused): ``k`` active latents per row (TopK family;
    BatchTopK: per row on average), ``k_list`` the nested k values of ``matryoshka_k`` (``k``
    defaults to their maximum), ``prefix_sizes`` the nested dictionary prefixes of
    ``matryoshka_prefix`` (strictly increasing, below ``d_sae``; the whole dictionary is always
    the last prefix), ``jumprelu_init_threshold`` the initial per-latent JumpReLU threshold in
    training units (0.1: inputs are normalised to ~unit variance per dimension, and a threshold
    starting near 0 takes hundreds of Adam steps of its log to rise to that scale).
    """

    arch: str
    d_in: int
    d_sae: int
    k: int | None = None
    input_scale: float = 1.0
    k_list: list[int] | None = None
    prefix_sizes: list[int] | None = None
    jumprelu_init_threshold: float = 0.1

    def __post_init__(self) -> None:
        if self.d_in <= 0 or self.d_sae <= 0:
            raise ValueError(f"d_in and d_sae must be positive, got {self.d_in}, {self.d_sae}")
        if self.k_list is not None:
            self.k_list = _increasing("k_list", self.k_list, 1, self.d_sae)
            self.k = max(self.k_list) if self.k is None else self.k
        if self.prefix_sizes is not None:
            self.prefix_sizes = _increasing("prefix_sizes", self.prefix_sizes, 1, self.d_sae - 1)
        if self.k is not None and not 0 < self.k <= self.d_sae:
            raise ValueError(f"k must be in 1..d_sae={self.d_sae}, got {self.k}")
        if not self.input_scale > 0:
            raise ValueError(f"input_scale must be positive, got {self.input_scale}")
        if not self.jumprelu_init_threshold > 0:
            raise ValueError("jumprelu_init_threshold must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SAEConfig:
        return _from_dict(cls, raw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SAEConfig:
        return cls.from_dict(json.loads(text))


@dataclass
class TrainConfig:
    """The training recipe. Defaults follow Gao et al. 2024 (Scaling and evaluating sparse
    autoencoders) where they apply: Adam, AuxK coefficient 1/32, k_aux = d_in / 2, data-driven
    b_dec, tied random dictionary.

    ``aux_k`` of ``None`` means ``d_in // 2``. ``dead_steps_threshold`` counts optimiser steps
    without a single firing; it must span more rows than the gaps between a rare latent's
    firings (on small data, more than an epoch), or AuxK and resampling pull live latents away
    from the rows they fire on (bench/README.md, "The dead-latent window"). ``val_every`` and
    ``checkpoint_every`` are in steps; ``stats_rows`` caps the rows used to estimate the
    normalisation constant and the decoder bias.

    ``dict_init``: ``random`` is the tied random initialisation; ``data`` (models with ``k``)
    starts each decoder row at a distinct training row centred on ``b_dec``, and the encoder at
    the decoder's transpose over ``k``, so the k first codes add up to about one input. On
    activations whose variance fills few dimensions, random directions in ``d_in`` dimensions
    barely reach the data, and half of them never fire (bench/README.md, "Dead latents").

    Architecture-specific keys: ``l1_coef`` (``relu``) and ``l0_coef`` (``jumprelu``) weigh the
    sparsity penalty, ramped linearly from 0 over ``sparsity_warmup_steps`` so early training
    finds directions before being pushed to silence them; ``bandwidth`` is the width of the
    JumpReLU straight-through rectangle kernel (training units); ``threshold_momentum`` the
    exponential-average momentum of BatchTopK's inference threshold; ``loss_weighting`` how
    ``matryoshka_k`` weighs its nested-k losses.

    Dead-latent resampling (off unless ``resample_every`` is set): every ``resample_every`` steps
    during the first ``resample_until`` fraction of training, latents dead by
    ``dead_steps_threshold`` are re-pointed at poorly reconstructed inputs of the batch, with
    encoder norm ``resample_enc_scale`` times the mean norm of the live encoder columns.
    """

    lr: float = 4e-4
    batch_size: int = 4096
    epochs: int = 1
    seed: int = 0
    warmup_steps: int = 100
    lr_schedule: Schedule = "cosine"
    lr_end_frac: float = 0.0
    grad_clip: float | None = 1.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 6.25e-10
    aux_k: int | None = None
    aux_k_coef: float = 1 / 32
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
    l1_coef: float = 0.01
    l0_coef: float = 0.001
    sparsity_warmup_steps: int = 100
    bandwidth: float = 0.05
    threshold_momentum: float = 0.99
    loss_weighting: LossWeighting = "reverse"
    resample_every: int | None = None
    resample_until: float = 0.5
    resample_enc_scale: float = 1.0

    def __post_init__(self) -> None:
        self.adam_betas = tuple(self.adam_betas)
        if self.lr <= 0 or self.batch_size <= 0 or self.epochs <= 0:
            raise ValueError("lr, batch_size and epochs must be positive")
        if self.l1_coef < 0 or self.l0_coef < 0 or self.bandwidth <= 0:
            raise ValueError("l1_coef and l0_coef must be >= 0 and bandwidth > 0")
        if not 0 <= self.threshold_momentum < 1:
            raise ValueError(f"threshold_momentum must be in [0, 1), got {self.threshold_momentum}")
        if self.loss_weighting not in ("reverse", "uniform"):
            raise ValueError(f"unknown loss_weighting {self.loss_weighting!r}")
        if self.resample_every is not None and self.resample_every <= 0:
            raise ValueError("resample_every must be positive (or null to disable resampling)")
        if self.lr_schedule not in ("cosine", "linear", "constant"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}")
        if self.normalize not in ("none", "mean_norm"):
            raise ValueError(f"unknown normalize {self.normalize!r}")
        if self.b_dec_init not in ("geometric_median", "mean", "zeros"):
            raise ValueError(f"unknown b_dec_init {self.b_dec_init!r}")
        if self.dict_init not in ("random", "data"):
            raise ValueError(f"unknown dict_init {self.dict_init!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, raw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))
