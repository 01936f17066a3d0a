"""Streaming reconstruction metrics against a direct NumPy computation over all rows at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipsae.sae import TopKConfig, build_sae
from clipsae.sae.metrics import reconstruction_metrics, reconstruction_metrics_with_counts


def _reference(x: np.ndarray, codes: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    x, codes, x_hat = (a.astype(np.float64) for a in (x, codes, x_hat))
    fvu = ((x - x_hat) ** 2).sum() / ((x - x.mean(axis=0)) ** 2).sum()
    cos = (x * x_hat).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(x_hat, axis=1))
    l0 = (codes > 0).sum(1).mean()
    return {
        "n": len(x),
        "mse": ((x - x_hat) ** 2).mean(),
        "fvu": fvu,
        "r2": 1 - fvu,
        "cosine": cos.mean(),
        "l0": l0,
        "l0_frac": l0 / codes.shape[1],
        "l1": np.abs(codes).sum(1).mean(),
        "dead_frac": ((codes > 0).sum(0) == 0).mean(),
    }


@pytest.fixture
def sae_and_data():
    sae = build_sae(
        TopKConfig(d_in=12, d_sae=40, k=3, input_scale=0.7), torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        sae.b_enc.copy_(torch.linspace(-0.5, 0.2, 40))
    x = np.random.default_rng(0).normal(loc=2.0, size=(257, 12)).astype(np.float32)
    return sae, x


def test_metrics_match_numpy_over_uneven_batches(sae_and_data) -> None:
    sae, x = sae_and_data
    batches = [x[:100], x[100:101], x[101:]]
    metrics, counts = reconstruction_metrics_with_counts(sae, batches)
    with torch.no_grad():
        codes = sae.encode(torch.from_numpy(x)).numpy()
        x_hat = sae(torch.from_numpy(x)).numpy()
        dense = sae.dense_codes(torch.from_numpy(x))
        dense_hat = sae.decode(dense).numpy()
    for key, value in _reference(x, codes, x_hat).items():
        assert metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    for key, value in _reference(x, dense.numpy(), dense_hat).items():
        if key != "n":
            assert metrics[f"dense_{key}"] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    np.testing.assert_array_equal(counts, (codes > 0).sum(axis=0))
    assert metrics["dead_frac"] == pytest.approx(float((counts == 0).mean()))
    assert 0 < metrics["dead_frac"] < 1  # the fixture's biases leave some latents silent


def test_fvu_is_dataset_level_not_per_batch(sae_and_data) -> None:
    """Constant batches have zero variance each; only the whole-data mean gives a finite FVU."""
    sae, _ = sae_and_data
    x = np.repeat(np.eye(12, dtype=np.float32)[:2], 50, axis=0)
    one = reconstruction_metrics(sae, [x])
    split = reconstruction_metrics(sae, [x[:50], x[50:]])
    assert np.isfinite(one["fvu"]) and split["fvu"] == pytest.approx(one["fvu"], rel=1e-12)
    assert set(one) >= {"n", "mse", "fvu", "r2", "cosine", "l0", "l0_frac", "l1", "dead_frac"}


def test_perfect_reconstruction_and_no_rows() -> None:
    class Identity(type(build_sae(TopKConfig(d_in=4, d_sae=4, k=4)))):
        def forward_with_codes(self, x):
            return x.abs(), x

        def dense_codes(self, x):
            return None

    sae = Identity(TopKConfig(d_in=4, d_sae=4, k=4))
    x = np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32)
    metrics = reconstruction_metrics(sae, [x])
    assert (
        metrics["fvu"] == 0.0 and metrics["r2"] == 1.0 and metrics["cosine"] == pytest.approx(1.0)
    )
    assert not any(key.startswith("dense_") for key in metrics)
    with pytest.raises(ValueError, match="no rows"):
        reconstruction_metrics(sae, [])
