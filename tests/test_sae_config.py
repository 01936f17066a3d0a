"""Typed SAE configs: foreign and unknown keys rejected by name, field types checked, old
``cfg.json`` files still load, the sparsity warm-ups, the optimiser's weight decay and its
per-group learning rates."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from clipsae.sae import (
    ARCH_CONFIGS,
    ARCHITECTURES,
    JumpReLUConfig,
    MatryoshkaKConfig,
    ReLUConfig,
    SAEConfig,
    TopKConfig,
    TrainConfig,
    build_sae,
    load_sae,
    save_sae,
    train_sae,
)
from clipsae.sae.entry import sae_configs
from clipsae.sae.train import _make_optimizer

# The keys each architecture needs to be built, at d_sae = 4 * 16.
REQUIRED = {
    "topk": {"k": 4},
    "batchtopk": {"k": 4},
    "matryoshka_k": {"k_list": [2, 4]},
    "matryoshka_prefix": {"k": 4, "prefix_sizes": [16]},
    "relu": {},
    "jumprelu": {},
}
# A valid value for every architecture-specific key, to offer each to the architectures without it.
VALUES = {
    "k": 4,
    "k_list": [2, 4],
    "prefix_sizes": [16],
    "aux_k": 8,
    "aux_k_coef": 0.1,
    "bias_lr_scale": 2.0,
    "l1_coef": 0.1,
    "l1_coef_start": 0.0,
    "sparsity_warmup_frac": 0.1,
    "threshold_momentum": 0.9,
    "loss_weighting": "uniform",
    "jumprelu_init_threshold": 0.2,
    "l0_coef": 0.01,
    "l0_coef_start": 0.0,
    "bandwidth": 0.1,
}
FOREIGN = [
    (arch, key)
    for arch, cls in sorted(ARCH_CONFIGS.items())
    for key in sorted(VALUES)
    if key not in cls.entry_keys()
]


def _entry(arch: str, **extra) -> dict:
    return {"arch": arch, "expansion": 4, **REQUIRED[arch], **extra}


def test_every_arch_has_a_config_and_every_arch_key_a_test_value() -> None:
    assert set(REQUIRED) == set(ARCH_CONFIGS) == set(ARCHITECTURES)
    arch_keys = {k for cls in ARCH_CONFIGS.values() for k in cls.entry_keys()}
    assert arch_keys == set(VALUES)
    assert not arch_keys & set(TrainConfig.field_names())


@pytest.mark.parametrize("arch", sorted(REQUIRED))
def test_every_own_key_is_accepted(arch: str) -> None:
    own = {k: VALUES[k] for k in ARCH_CONFIGS[arch].entry_keys()}
    cfg, _ = sae_configs(_entry(arch, **own), d_in=16)
    assert type(cfg) is ARCH_CONFIGS[arch] and cfg.d_sae == 64
    for key, value in own.items():
        assert getattr(cfg, key) == (tuple(value) if isinstance(value, list) else value), key


@pytest.mark.parametrize(("arch", "key"), FOREIGN)
def test_foreign_key_is_rejected_naming_key_and_arch(arch: str, key: str) -> None:
    with pytest.raises(ValueError, match=rf"^key '{key}' does not apply to arch '{arch}' but to "):
        sae_configs(_entry(arch, **{key: VALUES[key]}), d_in=16)


def test_unknown_renamed_and_mistyped_keys() -> None:
    with pytest.raises(
        ValueError, match=r"^unknown key 'learning_rate' for arch 'relu' \(allowed: "
    ):
        sae_configs(_entry("relu", learning_rate=1), d_in=16)
    with pytest.raises(ValueError, match="key 'warmup_steps' is now warmup_frac"):
        sae_configs(_entry("topk", warmup_steps=20), d_in=16)
    bad_types = {
        "lr": ("1e-3", "lr must be a number, got '1e-3' \\(YAML reads"),
        "epochs": (2.5, "epochs must be an integer, got 2.5"),
        "k": (True, "k must be an integer, got True"),
        "adam_betas": ([0.9], "adam_betas must have 2 items"),
        "optimizer": ("sgd", "optimizer must be one of 'adam', 'adamw', got 'sgd'"),
        "warmup_frac": (20, "warmup_frac must be a fraction of the run in \\[0, 1\\], got 20"),
    }
    for key, (value, message) in bad_types.items():
        with pytest.raises(ValueError, match=message):
            sae_configs(_entry("topk", **{key: value}), d_in=16)
    with pytest.raises(ValueError, match="dict_init 'data' needs a model with k; 'relu'"):
        sae_configs(_entry("relu", dict_init="data"), d_in=16)


def test_configs_are_frozen_and_round_trip() -> None:
    cfg = MatryoshkaKConfig(d_in=8, d_sae=32, k_list=[2, 4], input_scale=0.5)
    assert cfg.k == 4 and cfg.k_list == (2, 4)
    assert SAEConfig.from_json(cfg.to_json()) == cfg
    tcfg = TrainConfig(lr=1e-3, optimizer="adamw", adam_betas=[0.8, 0.9])
    assert TrainConfig.from_json(tcfg.to_json()) == tcfg and tcfg.adam_betas == (0.8, 0.9)
    with pytest.raises(AttributeError):
        cfg.k = 3  # type: ignore[misc]


# cfg.json as the flat SAEConfig of earlier versions wrote it: every architecture's model keys
# (unused ones null) and the objective's keys in the recipe (here shortened to a few).
OLD_TRAIN = {"lr": 0.0004, "warmup_steps": 100, "l1_coef": 0.01, "sparsity_warmup_steps": 100}
OLD = {
    "relu": {"k": None, "k_list": None, "prefix_sizes": None},
    "topk": {"k": 3, "k_list": None, "prefix_sizes": None},
    "batchtopk": {"k": 3, "k_list": None, "prefix_sizes": None},
    "matryoshka_k": {"k": 2, "k_list": [1, 2], "prefix_sizes": None},
    "matryoshka_prefix": {"k": 3, "k_list": None, "prefix_sizes": [8, 16]},
    "jumprelu": {"k": None, "k_list": None, "prefix_sizes": None},
}


@pytest.mark.parametrize("arch", sorted(OLD))
def test_old_cfg_json_loads(arch: str, tmp_path) -> None:
    old = {
        "train": OLD_TRAIN,
        "training_data": "x.npy",
        **{"arch": arch, "d_in": 8, "d_sae": 32, "input_scale": 0.5, **OLD[arch]},
        "jumprelu_init_threshold": 0.1,
        "clipsae_version": "0.1.0",
    }
    model_keys = {k: v for k, v in OLD[arch].items() if v is not None}
    reference = build_sae(
        ARCH_CONFIGS[arch](d_in=8, d_sae=32, input_scale=0.5, **model_keys),
        torch.Generator().manual_seed(0),
    )
    save_sae(reference, tmp_path)
    (tmp_path / "cfg.json").write_text(json.dumps(old))
    sae = load_sae(tmp_path)
    assert type(sae) is type(reference) and sae.cfg == reference.cfg
    x = torch.randn(5, 8)
    with torch.no_grad():
        assert torch.equal(sae(x), reference(x))


def test_sparsity_warmup_reaches_its_final_value_at_the_fraction() -> None:
    cfg = TopKConfig(d_in=8, d_sae=16, k=3, l1_coef=0.1, l1_coef_start=0.02)
    cfg = replace(cfg, sparsity_warmup_frac=0.25)
    assert [cfg.l1_at(p) for p in (0.0, 0.125, 0.25, 0.6, 1.0)] == pytest.approx(
        [0.02, 0.06, 0.1, 0.1, 0.1], rel=1e-12
    )
    jump = JumpReLUConfig(d_in=8, d_sae=16, l0_coef=0.4, sparsity_warmup_frac=0.5)
    assert [jump.l0_at(p) for p in (0.25, 0.5, 0.75)] == pytest.approx([0.2, 0.4, 0.4])
    assert TopKConfig(d_in=8, d_sae=16, k=3, l1_coef=0.3, sparsity_warmup_frac=0.0).l1_at(0) == 0.3


def test_topk_loss_adds_the_warmed_up_l1_of_its_codes() -> None:
    """Codes weighted by their decoder rows' norms (rows off unit norm here, as with
    ``unit_norm_decoder: false``), times the coefficient of that point of the run."""
    cfg = TopKConfig(d_in=8, d_sae=16, k=3, aux_k_coef=0.0, l1_coef=0.5, sparsity_warmup_frac=0.5)
    sae = build_sae(cfg, torch.Generator().manual_seed(0)).double()
    norms = torch.linspace(0.5, 2.0, 16, dtype=torch.float64)
    x = torch.randn(20, 8, dtype=torch.float64)
    with torch.no_grad():
        sae.W_dec.mul_(norms[:, None] / sae.W_dec.norm(dim=1, keepdim=True))
        l1 = (sae.encode(x) * norms).sum(dim=1).mean()
    assert float(l1) > 0
    for progress, coef in ((0.25, 0.25), (0.5, 0.5), (0.9, 0.5)):
        out = sae.train_loss(x, torch.zeros(16, dtype=torch.bool), progress)
        torch.testing.assert_close(out.loss, out.mse + coef * l1, rtol=1e-12, atol=0)


def _zero_grad_step(tcfg: TrainConfig) -> tuple[dict, dict]:
    """Parameters before and after one optimiser step on zero gradients."""
    sae = build_sae(TopKConfig(d_in=8, d_sae=16, k=3), torch.Generator().manual_seed(0))
    with torch.no_grad():
        sae.b_enc.fill_(0.5)
    before = {n: p.detach().clone() for n, p in sae.named_parameters()}
    opt = _make_optimizer(sae, tcfg)
    for p in sae.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    return before, {n: p.detach().clone() for n, p in sae.named_parameters()}


def test_adamw_decays_weight_matrices_only() -> None:
    before, after = _zero_grad_step(TrainConfig(optimizer="adamw", lr=0.1, weight_decay=0.5))
    for name in ("W_enc", "W_dec"):  # decoupled: w <- w (1 - lr wd)
        torch.testing.assert_close(after[name], before[name] * 0.95, rtol=1e-6, atol=0)
    for name in ("b_enc", "b_dec"):
        assert torch.equal(after[name], before[name]), name
    plain_before, plain_after = _zero_grad_step(TrainConfig(optimizer="adamw", lr=0.1))
    assert all(torch.equal(plain_after[n], plain_before[n]) for n in plain_before)


def test_adam_weight_decay_is_an_l2_gradient() -> None:
    """Adam's first step on gradient wd * w moves each weight by lr against its sign."""
    before, after = _zero_grad_step(TrainConfig(optimizer="adam", lr=0.01, weight_decay=0.5))
    moved = before["W_enc"] - after["W_enc"]
    torch.testing.assert_close(moved, 0.01 * before["W_enc"].sign(), rtol=1e-4, atol=1e-7)
    assert torch.equal(after["b_enc"], before["b_enc"])


@pytest.mark.parametrize(
    ("cfg", "bias_factor"),
    [
        (TopKConfig(d_in=16, d_sae=32, k=3), 8.0),
        (TopKConfig(d_in=16, d_sae=32, k=3, bias_lr_scale=4.0), 4.0),
        (ReLUConfig(d_in=16, d_sae=32), 1.0),
    ],
)
def test_topk_biases_step_at_bias_lr_scale(cfg: SAEConfig, bias_factor: float) -> None:
    """Adam's first step moves each parameter by its group's lr: ``bias_lr_scale`` x lr
    (default 8) for TopK's b_enc and b_dec, lr for its weights and for ReLU's biases."""
    sae = build_sae(cfg, torch.Generator().manual_seed(0))
    before = {n: p.detach().clone() for n, p in sae.named_parameters()}
    opt = _make_optimizer(sae, TrainConfig(lr=0.01))
    for p in sae.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    for name, p in sae.named_parameters():
        factor = bias_factor if name in ("b_enc", "b_dec") else 1.0
        moved = before[name] - p.detach()
        torch.testing.assert_close(moved, torch.full_like(moved, 0.01 * factor), rtol=1e-4, atol=0)


@pytest.mark.parametrize("unit", [True, False])
def test_unit_norm_decoder_option(unit: bool, tmp_path) -> None:
    x = np.random.default_rng(0).normal(size=(640, 8)).astype(np.float32)
    tcfg = TrainConfig(lr=1e-2, batch_size=64, epochs=2, unit_norm_decoder=unit)
    train_sae(x, TopKConfig(d_in=8, d_sae=16, k=2), tcfg, tmp_path)
    norms = load_sae(tmp_path).W_dec.detach().norm(dim=1)
    if unit:
        torch.testing.assert_close(norms, torch.ones(16), atol=1e-6, rtol=0)
    else:
        assert float((norms - 1).abs().max()) > 0.01
