"""Metrics at other inference k (TopK family) and at each prefix (Matryoshka)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from saes import trained_sae
from sparse_data import sparse_data

from clipsae.evaluate.sweep import at_k, k_grid, k_sweep, nested_sweep, prefix, prefix_sweep
from clipsae.sae import (
    MatryoshkaKConfig,
    MatryoshkaPrefixConfig,
    ReLUConfig,
    TopKConfig,
    TrainConfig,
    build_sae,
)
from clipsae.sae.metrics import reconstruction_metrics

X, _ = sparse_data(2000, 16, 32, 3, seed=0)
TCFG = TrainConfig(lr=1e-2, batch_size=100, epochs=1, warmup_frac=0.25)


def batches():
    return (X[i : i + 500] for i in range(0, len(X), 500))


@pytest.mark.parametrize(
    "cfg",
    [
        TopKConfig(d_in=16, d_sae=64, k=4),
        MatryoshkaKConfig(d_in=16, d_sae=64, k_list=[2, 4, 8]),
    ],
    ids=["topk", "matryoshka_k"],
)
def test_k_sweep_at_the_trained_k_is_the_plain_evaluation(cfg, tmp_path):
    sae = trained_sae(X, cfg, TCFG, tmp_path)
    plain = reconstruction_metrics(sae, batches(), dense=False)
    rows = k_sweep(sae, batches, ks=[1, sae.cfg.k, 64])
    assert [row["k"] for row in rows] == [1, sae.cfg.k, 64]
    assert {key: value for key, value in rows[1].items() if key != "k"} == plain
    assert rows[0]["l0"] <= 1 < rows[1]["l0"] <= sae.cfg.k
    # k = d_sae is the dense path: every positive pre-activation, as dense_codes gives.
    dense = reconstruction_metrics(sae, batches())
    assert rows[2]["l0"] == pytest.approx(dense["dense_l0"], rel=1e-12)
    assert rows[2]["fvu"] == pytest.approx(dense["dense_fvu"], rel=1e-4)
    assert rows[0]["fvu"] > plain["fvu"]


def test_at_k_leaves_the_sae_alone_and_refuses_other_kinds():
    model = build_sae(TopKConfig(d_in=8, d_sae=32, k=3))
    copy = at_k(model, 7)
    assert (model.k, copy.k) == (3, 7)
    assert torch.equal(copy.W_dec, model.W_dec) and copy.W_dec is not model.W_dec
    with pytest.raises(ValueError, match="TopK-family"):
        at_k(build_sae(ReLUConfig(d_in=8, d_sae=32)), 4)


def test_k_grid_spans_powers_of_two_the_trained_ks_and_the_dense_end():
    sae = build_sae(MatryoshkaKConfig(d_in=16, d_sae=100, k_list=[3, 20]))
    assert k_grid(sae) == [3, 8, 16, 20, 32, 64, 100]


def test_prefix_sweep_equals_zeroing_the_later_latents(tmp_path):
    cfg = MatryoshkaPrefixConfig(d_in=16, d_sae=64, k=4, prefix_sizes=[8, 24])
    sae = trained_sae(X, cfg, TCFG, tmp_path)
    assert float(sae.threshold) > 0
    rows = nested_sweep(sae, batches)
    assert [row["prefix"] for row in rows] == [8, 24, 64]
    plain = reconstruction_metrics(sae, batches(), dense=False)
    assert {key: value for key, value in rows[-1].items() if key != "prefix"} == plain
    x = torch.from_numpy(X)
    with torch.no_grad():
        codes = sae.encode(x)
        for row in rows[:-1]:
            masked = codes.clone()
            masked[:, row["prefix"] :] = 0
            err = (x - sae.decode(masked)).double().pow(2).sum()
            fvu = float(err / (x.double() - x.double().mean(0)).pow(2).sum())
            assert row["fvu"] == pytest.approx(fvu, rel=1e-5)
            assert row["l0"] == pytest.approx(float((masked > 0).sum(1).double().mean()))
    assert rows[0]["fvu"] > rows[1]["fvu"] > rows[2]["fvu"]
    assert prefix_sweep(sae, batches, sizes=[8]) == rows[:1]
    with pytest.raises(ValueError, match="prefix size"):
        prefix(sae, 65)
    assert np.isfinite([row["cosine"] for row in rows]).all()
