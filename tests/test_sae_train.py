"""Trainer: exact resume, decoder constraint, convergence on data of known structure, streaming."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch
from sparse_data import sparse_data

from clipsae.activations.shards import ActivationStore, ShardWriter
from clipsae.sae import ReLUConfig, TopKConfig, TrainConfig, load_sae, train_sae
from clipsae.sae.data import BatchSource
from clipsae.sae.metrics import reconstruction_metrics
from clipsae.sae.train import (
    CHECKPOINT_FILE,
    _clip_gradient,
    _init_sae,
    geometric_median,
    lr_at,
)


def _batches(x: np.ndarray, size: int = 1024):
    return (x[i : i + size] for i in range(0, len(x), size))


def test_resume_after_interruption_is_exact(tmp_path) -> None:
    x, _ = sparse_data(3000, 16, 32, 3, seed=0)
    cfg = TopKConfig(d_in=16, d_sae=64, k=4)
    tcfg = TrainConfig(
        lr=3e-3,
        batch_size=128,
        epochs=2,
        warmup_frac=5 / 46,
        dead_steps_threshold=4,
        checkpoint_every=7,
        val_every=10,
    )
    full = train_sae(x, cfg, tcfg, tmp_path / "full", val=x[:500])
    stopped = train_sae(x, cfg, tcfg, tmp_path / "resumed", val=x[:500], stop_after=30)
    assert not stopped["completed"] and stopped["steps"] == 30
    assert (tmp_path / "resumed" / CHECKPOINT_FILE).exists()
    resumed = train_sae(x, cfg, tcfg, tmp_path / "resumed", val=x[:500])
    assert full["completed"] and resumed["completed"] and resumed["steps"] == full["steps"] == 46
    a, b = load_sae(tmp_path / "full"), load_sae(tmp_path / "resumed")
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    log_a = pl.read_parquet(tmp_path / "full" / "log.parquet")
    assert log_a.equals(pl.read_parquet(tmp_path / "resumed" / "log.parquet"))
    assert log_a["step"].to_list() == list(range(1, 47))
    assert log_a["val_fvu"].null_count() == 46 - 5  # steps 10, 20, 30, 40 and the last
    assert not (tmp_path / "resumed" / CHECKPOINT_FILE).exists()


def test_resume_refuses_other_settings(tmp_path) -> None:
    x, _ = sparse_data(600, 8, 16, 2, seed=1)
    cfg = TopKConfig(d_in=8, d_sae=32, k=2)
    train_sae(x, cfg, TrainConfig(batch_size=64, epochs=1), tmp_path, stop_after=3)
    with pytest.raises(ValueError, match="other settings"):
        train_sae(x, cfg, TrainConfig(batch_size=64, epochs=1, lr=1e-3), tmp_path)


def test_decoder_rows_unit_norm_and_k_sparse_after_training(tmp_path) -> None:
    x, _ = sparse_data(2000, 16, 32, 3, seed=2)
    train_sae(
        x,
        TopKConfig(d_in=16, d_sae=64, k=4),
        TrainConfig(lr=1e-2, batch_size=100, epochs=1),
        tmp_path,
    )
    sae = load_sae(tmp_path)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-6, rtol=0)
    with torch.no_grad():
        assert ((sae.encode(torch.from_numpy(x)) > 0).sum(dim=1) <= 4).all()


def test_low_rank_data_is_reconstructed(tmp_path) -> None:
    """Rank-4 data in 16 dims, d_sae = 64 >= d_in, k = 8 >= 2 * rank: +/- each basis direction as
    a latent reconstructs every row exactly, so the optimum is FVU = 0. About 800 Adam steps
    get within 1% of the variance (float32 round-off alone would allow ~1e-6)."""
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(4000, 4)) @ rng.normal(size=(4, 16)) + 3.0).astype(np.float32)
    tcfg = TrainConfig(lr=1e-2, batch_size=128, epochs=25, warmup_frac=20 / 775)
    train_sae(x, TopKConfig(d_in=16, d_sae=64, k=8), tcfg, tmp_path)
    assert reconstruction_metrics(load_sae(tmp_path), _batches(x))["fvu"] < 0.01


def test_topk_recovers_true_directions(tmp_path) -> None:
    x, dirs = sparse_data(20000, 32, 48, 3, seed=4)
    tcfg = TrainConfig(lr=4e-3, batch_size=256, epochs=6, warmup_frac=20 / 468, b_dec_init="zeros")
    train_sae(x, TopKConfig(d_in=32, d_sae=128, k=3), tcfg, tmp_path)
    w_dec = load_sae(tmp_path).W_dec.detach().numpy()
    assert (dirs @ w_dec.T).max(axis=1).mean() >= 0.9


def test_streaming_source_visits_each_row_at_most_once(tmp_path) -> None:
    x = np.arange(1000 * 4, dtype=np.float32).reshape(1000, 4)
    writer = ShardWriter(tmp_path, d=4, shard_rows=64)
    writer.add(x)
    writer.close()
    source = BatchSource(ActivationStore(tmp_path), shuffle_buffer_rows=200, max_in_memory_bytes=0)
    assert source.array is None
    batches = list(source.epoch(0, batch_size=50, seed=0))
    assert len(batches) == source.steps_per_epoch(50) == 20
    ids = np.concatenate(batches)[:, 0] / 4
    assert len(np.unique(ids)) == len(ids) == 1000
    again = list(source.epoch(0, batch_size=50, seed=0, skip=3))
    assert all(np.array_equal(a, b) for a, b in zip(again, batches[3:], strict=True))
    assert not np.array_equal(batches[0], next(source.epoch(1, batch_size=50, seed=0)))


def test_lr_schedule_is_sized_by_fractions_of_the_run() -> None:
    tcfg = TrainConfig(lr=1.0, warmup_frac=0.1, decay_frac=1.0, lr_end_frac=0.1)
    assert lr_at(0, 100, tcfg) == pytest.approx(0.1)  # warm-up of 10 steps
    assert lr_at(9, 100, tcfg) == pytest.approx(1.0)  # peak on its last step
    assert lr_at(55, 100, tcfg) == pytest.approx(0.55)  # cosine half-way from 10 to 100
    assert lr_at(100, 100, tcfg) == pytest.approx(0.1)
    assert lr_at(1, 20, tcfg) == pytest.approx(1.0)  # the same fractions on a 20-step run
    late = TrainConfig(lr=2.0, warmup_frac=0.0, decay_frac=0.2, lr_schedule="linear")
    assert [lr_at(s, 100, late) for s in (0, 79, 80, 90)] == pytest.approx([2, 2, 2, 1])
    assert lr_at(50, 100, TrainConfig(lr=2.0, warmup_frac=0.0, decay_frac=0.0)) == 2.0


@pytest.mark.parametrize("epochs", [1, 2])
def test_short_run_reaches_peak_lr_at_the_warmup_fraction(epochs: int, tmp_path) -> None:
    """The 87-step run of issue 15 under the defaults: a fixed 100-step warm-up never reached
    the peak; a fraction of the run does, at the same fraction whatever the length."""
    x = np.random.default_rng(0).normal(size=(87 * 32, 8)).astype(np.float32)
    tcfg = TrainConfig(batch_size=32, epochs=epochs, lr=1e-3)
    train_sae(x, TopKConfig(d_in=8, d_sae=16, k=2), tcfg, tmp_path)
    lr = pl.read_parquet(tmp_path / "log.parquet")["lr"].to_numpy()
    total = 87 * epochs
    assert len(lr) == total and lr.max() == pytest.approx(1e-3, rel=1e-12)
    peak = round(TrainConfig().warmup_frac * total)
    assert int(np.argmax(lr)) + 1 == peak  # the log's step is 1-based
    assert np.all(np.diff(lr[:peak]) > 0) and np.all(np.diff(lr[peak:]) <= 0)
    assert lr[-1] < 1e-3 * 0.01  # the default cosine decays to ~0 by the last step
    decay_start = total - round(TrainConfig().decay_frac * total)
    assert np.all(lr[peak - 1 : decay_start] == 1e-3)  # at its peak until the last 20%


def test_grad_clip_bounds_the_dimension_summed_gradient() -> None:
    """The clip's bound is on ``d_in`` x the element-mean gradient: a gradient of norm 0.5 in
    64 dimensions is 32 on that scale, so a bound of 1 scales it by 1/32."""
    weight = torch.nn.Parameter(torch.zeros(4, 16))
    weight.grad = torch.full((4, 16), 0.5 / 8)  # norm 0.5
    assert _clip_gradient([weight], 1.0, d_in=64) == pytest.approx(32.0)
    assert float(weight.grad.norm()) * 64 == pytest.approx(1.0, rel=1e-5)
    assert _clip_gradient([weight], None, d_in=64) == pytest.approx(1.0, rel=1e-5)
    assert _clip_gradient([weight], 10.0, d_in=64) == pytest.approx(1.0, rel=1e-5)
    assert float(weight.grad.norm()) * 64 == pytest.approx(1.0, rel=1e-5)  # under it: untouched


def test_default_grad_clip_acts_on_normalised_inputs(tmp_path) -> None:
    """Under the defaults (inputs scaled to a mean squared norm of d_in) the gradient of the
    summed loss starts well above the bound of 1, so the clip acts; on the element-mean scale the
    same gradient is d_in times smaller and a bound of 1 never acted."""
    x, _ = sparse_data(2048, 32, 64, 3, seed=4)
    train_sae(x, TopKConfig(d_in=32, d_sae=128, k=4), TrainConfig(batch_size=256), tmp_path)
    grad_norm = pl.read_parquet(tmp_path / "log.parquet")["grad_norm"].to_numpy()
    assert grad_norm[0] > TrainConfig().grad_clip
    assert np.all(grad_norm / 32 < TrainConfig().grad_clip)  # what the old clip compared


def test_geometric_median_resists_outliers_and_mean_norm_scale(tmp_path) -> None:
    points = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [1000.0, 1000.0]])
    median = geometric_median(points)
    assert float(median.norm()) < 0.5 < float(points.mean(dim=0).norm())
    x, _ = sparse_data(500, 8, 16, 2, seed=5)
    x *= 7.0
    train_sae(x, TopKConfig(d_in=8, d_sae=32, k=2), TrainConfig(batch_size=100, epochs=1), tmp_path)
    scale = load_sae(tmp_path).cfg.input_scale
    assert scale == pytest.approx(math.sqrt(8 / float((x.astype(np.float64) ** 2).sum(1).mean())))


@pytest.mark.parametrize("n_rows", [300, 40])
def test_data_init_points_latents_at_distinct_rows(n_rows: int) -> None:
    x = np.random.default_rng(0).normal(size=(n_rows, 16)).astype(np.float32)
    cfg = TopKConfig(d_in=16, d_sae=64, k=4)
    tcfg = TrainConfig(dict_init="data", normalize="none")
    sae = _init_sae(cfg, tcfg, BatchSource(x, 1024, 1 << 20))
    rows = torch.from_numpy(x) - sae.b_dec.detach()
    rows /= rows.norm(dim=1, keepdim=True)
    w_dec = sae.W_dec.detach()
    match = (w_dec @ rows.T).max(dim=1)
    from_data = match.values > 1 - 1e-5
    # Every latent starts at its own row while rows last; the rest keep the random init.
    assert int(from_data.sum()) == min(n_rows, 64)
    assert len(set(match.indices[from_data].tolist())) == int(from_data.sum())
    torch.testing.assert_close(w_dec.norm(dim=1), torch.ones(64))
    torch.testing.assert_close(sae.W_enc[:, from_data].detach(), w_dec[from_data].T / 4)
    assert torch.all(sae.b_enc.detach() == 0)


def test_data_init_needs_k(tmp_path) -> None:
    x = np.ones((50, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="dict_init 'data' needs a model with k; 'relu' has none"):
        train_sae(x, ReLUConfig(d_in=8, d_sae=16), TrainConfig(dict_init="data"), tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_data_init_keeps_latents_alive_on_low_rank_data(tmp_path) -> None:
    """A 16-d Gaussian inside 128 dimensions: most random directions barely project onto it and
    never reach the top k, while latents started at data rows all do (measured: 67% vs 3% dead
    on the held-out rows, bench/README.md)."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(128, 16)))[0]
    x = (rng.normal(size=(5000, 16)) @ basis.T + 0.01 * rng.normal(size=(5000, 128))).astype(
        np.float32
    )
    train, held_out = x[:4000], x[4000:]
    cfg = TopKConfig(d_in=128, d_sae=1024, k=8)
    tcfg = TrainConfig(
        lr=1e-3, batch_size=256, epochs=10, warmup_frac=20 / 150, dead_steps_threshold=10
    )
    metrics = {}
    for init in ("random", "data"):
        train_sae(train, cfg, replace(tcfg, dict_init=init), tmp_path / init)
        metrics[init] = reconstruction_metrics(load_sae(tmp_path / init), _batches(held_out))
    assert metrics["random"]["dead_frac"] > 0.3
    assert metrics["data"]["dead_frac"] < 0.1
    assert metrics["data"]["fvu"] < metrics["random"]["fvu"]
