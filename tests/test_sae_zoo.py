"""The SAE zoo behind one interface: every architecture's promised sparsity, unit-norm decoder,
checkpoint round trip, exact resume and recovery of known directions, plus the maths of each
objective against a dense float64 reference."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
from sparse_data import sparse_data

from clipsae.sae import (
    ARCH_CONFIGS,
    ARCHITECTURES,
    SAEConfig,
    TrainConfig,
    build_sae,
    load_sae,
    save_sae,
    train_sae,
)
from clipsae.sae.entry import sae_configs
from clipsae.sae.train import _resample_dead, _State

# Model keys per architecture at d_sae = 64, and the training keys that make each one sparse.
ZOO: dict[str, tuple[dict, dict]] = {
    "topk": ({"k": 3}, {}),
    "batchtopk": ({"k": 3}, {}),
    "relu": ({"l1_coef": 0.05, "sparsity_warmup_frac": 0.05}, {}),
    "jumprelu": ({"l0_coef": 0.02, "bandwidth": 0.1, "sparsity_warmup_frac": 0.05}, {}),
    "matryoshka_k": ({"k_list": [1, 3]}, {}),
    "matryoshka_prefix": ({"k": 3, "prefix_sizes": [16, 32]}, {}),
}


def _cfg(arch: str, d_in: int = 16, d_sae: int = 64) -> SAEConfig:
    return ARCH_CONFIGS[arch](d_in=d_in, d_sae=d_sae, **ZOO[arch][0])


def _tcfg(arch: str, **kw) -> TrainConfig:
    return TrainConfig(**{**ZOO[arch][1], **kw})


def _trained(arch: str, tmp_path, epochs: int = 1) -> torch.nn.Module:
    x, _ = sparse_data(1500, 16, 32, 3, seed=0)
    tcfg = _tcfg(arch, lr=3e-3, batch_size=100, epochs=epochs, warmup_frac=1 / 3)
    train_sae(x, _cfg(arch), tcfg, tmp_path)
    return load_sae(tmp_path)


def test_every_architecture_is_registered() -> None:
    assert set(ZOO) <= set(ARCHITECTURES)


@pytest.mark.parametrize("arch", sorted(ZOO))
def test_config_entry_reaches_the_model(arch: str) -> None:
    """Every architecture key is usable from a workflow ``saes`` entry."""
    model_keys, train_keys = ZOO[arch]
    cfg, tcfg = sae_configs({"arch": arch, "expansion": 4, **model_keys, **train_keys}, d_in=16)
    assert cfg == _cfg(arch) and tcfg == _tcfg(arch)
    assert isinstance(build_sae(cfg), ARCHITECTURES[arch])


@pytest.mark.parametrize("arch", sorted(ZOO))
def test_shapes_unit_decoder_and_round_trip(arch: str, tmp_path) -> None:
    sae = _trained(arch, tmp_path / "run")
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-6, rtol=0)
    x = torch.randn(40, 16)
    with torch.no_grad():
        codes, x_hat = sae.forward_with_codes(x)
        assert codes.shape == (40, 64) and x_hat.shape == (40, 16) and (codes >= 0).all()
        torch.testing.assert_close(x_hat, sae.decode(sae.encode(x)), atol=1e-5, rtol=1e-5)
        save_sae(sae, tmp_path / "copy")
        loaded = load_sae(tmp_path / "copy")
        assert loaded.cfg == sae.cfg
        assert torch.equal(loaded(x), sae(x)) and torch.equal(loaded.encode(x), codes)


@pytest.mark.parametrize("arch", sorted(ZOO))
def test_resume_after_interruption_is_exact(arch: str, tmp_path) -> None:
    x, _ = sparse_data(1200, 16, 32, 3, seed=1)
    tcfg = _tcfg(
        arch,
        lr=3e-3,
        batch_size=100,
        epochs=2,
        warmup_frac=0.125,
        dead_steps_threshold=3,
        resample_every=4,
        checkpoint_every=5,
        val_every=7,
    )
    train_sae(x, _cfg(arch), tcfg, tmp_path / "full", val=x[:300])
    assert not train_sae(x, _cfg(arch), tcfg, tmp_path / "cut", val=x[:300], stop_after=13)[
        "completed"
    ]
    train_sae(x, _cfg(arch), tcfg, tmp_path / "cut", val=x[:300])
    full, cut = load_sae(tmp_path / "full").state_dict(), load_sae(tmp_path / "cut").state_dict()
    assert full.keys() == cut.keys()
    for name, tensor in full.items():
        assert torch.equal(tensor, cut[name]), name


def _random_sae(arch: str, seed: int = 0, **cfg_kw) -> torch.nn.Module:
    """An untrained SAE with non-trivial biases, in float64 for exact comparisons."""
    cfg = replace(_cfg(arch), **cfg_kw)
    sae = build_sae(cfg, torch.Generator().manual_seed(seed)).double()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed + 1)
        sae.b_dec.copy_(torch.randn(cfg.d_in, generator=gen, dtype=torch.float64))
        sae.b_enc.copy_(0.1 * torch.randn(cfg.d_sae, generator=gen, dtype=torch.float64))
    return sae


@pytest.mark.parametrize("arch", ["topk", "matryoshka_k"])
def test_topk_family_keeps_exactly_k_per_row(arch: str) -> None:
    sae = _random_sae(arch)
    with torch.no_grad():
        sae.b_enc.fill_(100.0)  # every pre-activation positive: exactly k must survive
        codes = sae.encode(torch.randn(32, 16, dtype=torch.float64))
    assert torch.equal((codes > 0).sum(dim=1), torch.full((32,), 3))


def test_batchtopk_keeps_k_times_batch_and_learns_its_threshold() -> None:
    sae = _random_sae("batchtopk", threshold_momentum=0.9)
    x = torch.randn(50, 16, dtype=torch.float64)
    out = sae.train_loss(x, torch.zeros(64, dtype=torch.bool), 1.0)
    assert int(out.fire_counts.sum()) == 3 * 50 and float(out.l0) == 3.0
    assert not torch.equal(out.fire_counts.clamp(max=3), out.fire_counts.clamp(max=2))  # uneven
    pre = sae.pre_acts(x).detach()
    smallest_kept = float(pre.flatten().topk(150).values[-1])
    assert float(sae.threshold) == pytest.approx(smallest_kept)  # first batch sets it
    with torch.no_grad():
        codes = sae.encode(x)
    torch.testing.assert_close(codes, pre * (pre >= smallest_kept), rtol=0, atol=1e-12)
    sae.train_loss(x[:25], torch.zeros(64, dtype=torch.bool), 1.0)
    second = float(sae.pre_acts(x[:25]).detach().flatten().topk(75).values[-1])
    assert float(sae.threshold) == pytest.approx(0.9 * smallest_kept + 0.1 * second)


@pytest.mark.parametrize("oversample", [2.0, 0.5])
def test_batchtopk_sparse_gradients_equal_dense_autograd(oversample: float, caplog) -> None:
    """Loss and every gradient equal those of dense autograd on the codes the flattened batch's
    top-k keeps, on the fast selection and on the fallback (a bound sampled shallower than the
    cut misses it), which is logged."""
    sae = _random_sae("batchtopk", aux_k_coef=0.0, l1_coef=0.1, sparsity_warmup_frac=0.0)
    sae.oversample = oversample
    x = torch.randn(40, 16, dtype=torch.float64)
    with caplog.at_level(logging.DEBUG, logger="clipsae.sae.topk"):
        loss = sae.train_loss(x, torch.zeros(64, dtype=torch.bool), 1.0).loss
    assert len(caplog.records) == (oversample < 1)
    target = x * sae.scale
    pre = (target - sae.b_dec) @ sae.W_enc + sae.b_enc
    cut = pre.detach().flatten().topk(3 * 40).values[-1]
    codes = pre * ((pre.detach() >= cut) & (pre.detach() > 0))
    l1 = (codes * sae.W_dec.norm(dim=1)).sum(dim=1).mean()
    dense = _dense_mse(sae, target, codes) + 0.1 * l1
    torch.testing.assert_close(loss, dense, rtol=1e-12, atol=0)
    _assert_same_gradients(sae, loss, dense)


def test_batchtopk_calibration_sets_the_mean_batch_cut() -> None:
    """After training, the threshold is the mean over batches of each batch's BatchTopK cut
    under the final weights, replacing the lagging training average."""
    sae = _random_sae("batchtopk", threshold_momentum=0.9)
    batches = [torch.randn(50, 16, dtype=torch.float64) for _ in range(2)]
    cuts = [float(sae.pre_acts(x).detach().flatten().topk(150).values[-1]) for x in batches]
    sae.threshold.fill_(123.0)
    sae.calibrate(iter(batches))
    assert float(sae.threshold) == pytest.approx(sum(cuts) / 2, rel=1e-12)


def test_batchtopk_inference_l0_is_k_after_a_short_run(tmp_path) -> None:
    """23 steps on correlated Gaussian rows (a decaying spectrum and an offset, as activations
    have): the training average of the cut still weighed the first steps and gave an inference
    L0 of 4.7 for k = 8; the calibrated threshold gives k within 8% on held-out rows (the
    sampling error of the mean over 2000 rows is ~0.1, 1.4% of k)."""
    rng = np.random.default_rng(0)
    d = 32
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    rows = rng.normal(size=(8000, d)) / np.arange(1, d + 1) ** 0.5 @ basis + rng.normal(size=d)
    train, val = rows[:6000].astype(np.float32), rows[6000:].astype(np.float32)
    cfg = ARCH_CONFIGS["batchtopk"](d_in=d, d_sae=128, k=8)
    train_sae(train, cfg, TrainConfig(batch_size=256, lr=1e-3), tmp_path)
    with torch.no_grad():
        l0 = (load_sae(tmp_path).encode(torch.from_numpy(val)) > 0).sum(dim=1).double().mean()
    assert float(l0) == pytest.approx(8, rel=0.08)


def test_relu_l0_falls_as_l1_coefficient_rises(tmp_path) -> None:
    x, _ = sparse_data(2000, 16, 32, 3, seed=2)
    l0 = []
    for coef in (0.0, 0.03, 0.3):
        tcfg = _tcfg("relu", lr=3e-3, batch_size=100, epochs=2)
        train_sae(x, replace(_cfg("relu"), l1_coef=coef), tcfg, tmp_path / str(coef))
        with torch.no_grad():
            l0.append(
                float(
                    (load_sae(tmp_path / str(coef)).encode(torch.from_numpy(x)) > 0)
                    .sum(1)
                    .float()
                    .mean()
                )
            )
    assert l0[0] > l0[1] > l0[2]


def test_jumprelu_codes_vanish_below_threshold_and_ste_gradients() -> None:
    sae = _random_sae("jumprelu", l0_coef=1.0, bandwidth=0.2, sparsity_warmup_frac=0.0)
    with torch.no_grad():
        sae.log_threshold.copy_(
            torch.empty(64, dtype=torch.float64).uniform_(-3, 0.5).log().nan_to_num(-9)
        )
    x = torch.randn(200, 16, dtype=torch.float64)
    pre = sae.pre_acts(x).detach()
    theta = sae.threshold.detach()
    with torch.no_grad():
        codes = sae.encode(x)
    assert torch.equal(codes, pre * (pre > theta))
    assert (codes[(pre <= theta)] == 0).all() and (
        codes[codes > 0] > theta.expand_as(codes)[codes > 0]
    ).all()
    # d(L0)/d(log theta) = -(theta / eps) * #{|pre - theta| < eps / 2}, averaged over rows
    out = sae.train_loss(x, torch.zeros(64, dtype=torch.bool), 1.0)
    sae.zero_grad()
    out.aux_loss.backward()
    near = ((pre - theta).abs() < 0.1).double().sum(dim=0)
    torch.testing.assert_close(
        sae.log_threshold.grad, -theta / 0.2 * near / 200, rtol=1e-12, atol=1e-12
    )


def _dense_mse(sae, target: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    return (target - (codes @ sae.W_dec + sae.b_dec)).pow(2).mean()


def _assert_same_gradients(sae, loss: torch.Tensor, expected: torch.Tensor) -> None:
    """The sparse kernels' gradients of ``loss`` equal dense autograd's of ``expected``."""
    sae.zero_grad()
    loss.backward()
    sparse = {n: p.grad.clone() for n, p in sae.named_parameters()}
    sae.zero_grad()
    expected.backward()
    for name, p in sae.named_parameters():
        torch.testing.assert_close(sparse[name], p.grad, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("weighting", ["reverse", "uniform"])
def test_matryoshka_k_objective_is_the_weighted_nested_mse(weighting: str) -> None:
    sae = _random_sae("matryoshka_k", k_list=[1, 2, 5], loss_weighting=weighting, aux_k_coef=0.0)
    x = torch.randn(30, 16, dtype=torch.float64)
    loss = sae.train_loss(x, torch.zeros(64, dtype=torch.bool), 1.0).loss
    target = x * sae.scale
    pre = (target - sae.b_dec) @ sae.W_enc + sae.b_enc
    weights = [5 / 8, 2 / 8, 1 / 8] if weighting == "reverse" else [1 / 3] * 3
    expected = 0.0
    for w, k in zip(weights, [1, 2, 5], strict=True):
        values, indices = pre.topk(k, dim=1)
        expected += w * _dense_mse(
            sae, target, torch.zeros_like(pre).scatter(1, indices, values.relu())
        )
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)
    _assert_same_gradients(sae, loss, expected)


def test_matryoshka_prefix_objective_sums_prefix_reconstructions() -> None:
    sae = _random_sae("matryoshka_prefix", aux_k_coef=0.0)
    x = torch.randn(30, 16, dtype=torch.float64)
    loss = sae.train_loss(x, torch.zeros(64, dtype=torch.bool), 1.0).loss
    target = x * sae.scale
    pre = (target - sae.b_dec) @ sae.W_enc + sae.b_enc
    kept = pre.relu().flatten().topk(3 * 30).values[-1]
    codes = pre * (pre >= kept) * (pre > 0)
    latent = torch.arange(64)
    expected = sum(_dense_mse(sae, target, codes * (latent < m)) for m in (16, 32, 64))
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)
    _assert_same_gradients(sae, loss, expected)


def test_relu_objective_is_mse_plus_norm_weighted_l1() -> None:
    sae = _random_sae("relu", l1_coef=0.3, sparsity_warmup_frac=0.0)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(64, 1, dtype=torch.float64) + 0.5)  # rows off unit norm
    x = torch.randn(30, 16, dtype=torch.float64)
    out = sae.train_loss(x, torch.zeros(64, dtype=torch.bool), 1.0)
    target = x * sae.scale
    codes = ((target - sae.b_dec) @ sae.W_enc + sae.b_enc).relu()
    l1 = (codes * sae.W_dec.norm(dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(out.aux_loss, l1, rtol=1e-12, atol=0)
    expected = _dense_mse(sae, target, codes) + 0.3 * l1
    torch.testing.assert_close(out.loss, expected, rtol=1e-12, atol=0)
    assert float(out.l0) == pytest.approx(float((codes > 0).sum(dim=1).double().mean()))
    _assert_same_gradients(sae, out.loss, expected)


def test_resampling_repoints_dead_latents_at_badly_reconstructed_rows() -> None:
    sae = build_sae(_cfg("topk"), torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(sae.parameters())
    x = torch.randn(20, 16)
    sae.train_loss(x, torch.zeros(64, dtype=torch.bool), 1.0).loss.backward()
    opt.step()
    st = _State(
        step=1, steps_since_fired=torch.zeros(64, dtype=torch.int64), fire_counts=torch.zeros(64)
    )
    dead = torch.tensor([3, 10, 40])
    st.steps_since_fired[dead] = 50
    alive_before = {n: p.detach().clone() for n, p in sae.named_parameters()}
    _resample_dead(sae, opt, st, x, TrainConfig(dead_steps_threshold=50, resample_enc_scale=1.0))
    assert (st.steps_since_fired == 0).all()
    centred = x * sae.scale - sae.b_dec
    directions = centred / centred.norm(dim=1, keepdim=True)
    with torch.no_grad():
        cosines = sae.W_dec[dead] @ directions.t()
        torch.testing.assert_close(cosines.max(dim=1).values, torch.ones(3))  # each is a batch row
        assert len(set(cosines.argmax(dim=1).tolist())) == 3  # and no two share one
        torch.testing.assert_close(
            sae.W_enc[:, dead].t(), sae.W_dec[dead] * sae.W_enc[:, dead].norm(dim=0)[:, None]
        )
    keep = torch.ones(64, dtype=torch.bool)
    keep[dead] = False
    assert torch.equal(sae.W_dec[keep], alive_before["W_dec"][keep])
    assert (opt.state[sae.W_dec]["exp_avg"][dead] == 0).all()
    assert (opt.state[sae.W_dec]["exp_avg"][keep] != 0).any()


# Per-architecture overrides: (model keys, training keys). The first matryoshka prefix must be able
# to hold all 24 true directions; JumpReLU needs an L0 weight matching L0 = 3 and more steps for
# its thresholds to rise through their straight-through gradients.
RECOVERY = {
    "matryoshka_prefix": ({"prefix_sizes": [32]}, {}),
    "jumprelu": ({"l0_coef": 0.1}, {"epochs": 12}),
}


@pytest.mark.parametrize("arch", sorted(ZOO))
def test_recovers_true_directions(arch: str, tmp_path) -> None:
    """Rows are non-negative combinations of 3 of 24 random unit directions in 16 dims; each
    architecture's decoder must contain each true direction (mean best cosine >= 0.9)."""
    x, dirs = sparse_data(4000, 16, 24, 3, seed=4)
    model_kw, train_kw = RECOVERY.get(arch, ({}, {}))
    cfg = replace(_cfg(arch), **model_kw)
    recipe = {"lr": 1e-2, "batch_size": 64, "epochs": 8, "b_dec_init": "zeros", **train_kw}
    warmup = 20 / (4000 // 64 * recipe["epochs"])  # 20 steps, as the recipe was tuned with
    train_sae(x, cfg, _tcfg(arch, **recipe, warmup_frac=warmup), tmp_path)
    w_dec = load_sae(tmp_path).W_dec.detach().numpy()
    assert (dirs @ w_dec.T).max(axis=1).mean() >= 0.9
