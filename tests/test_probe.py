"""Linear probe of CLIP vs CLIP+SAE on frozen embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from saes import constant_sae, identity_sae
from sklearn.preprocessing import normalize

from clipsae.evaluate.probe import fit_probe, linear_probe, probe_comparison

CPU = torch.device("cpu")


def clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four well separated Gaussian clusters in 16 dims (rows float32, labels 0..3)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(4, 16)) * 3
    labels = rng.integers(0, 4, size=n)
    return (centres[labels] + rng.normal(size=(n, 16))).astype(np.float32), labels


def test_identity_sae_changes_nothing_exactly():
    train, test = clusters(400, seed=1), clusters(200, seed=2)
    result = linear_probe(train=train, test=test, reconstruct=identity_sae(16), device=CPU)
    assert result["probe_accuracy_clip"] > 0.95
    assert result["probe_accuracy_sae"] == result["probe_accuracy_clip"]
    assert result["probe_delta_accuracy"] == 0.0
    assert result["probe_kl_clip_to_sae"] == 0.0
    assert result["probe_agreement"] == 1.0
    assert (result["n_train"], result["n_test"], result["n_classes"]) == (400, 200, 4)


def test_a_noisy_reconstruction_is_scored_against_the_clip_probe():
    train, (x_test, y_test) = clusters(400, seed=3), clusters(300, seed=4)
    noisy = x_test + 8 * np.random.default_rng(5).normal(size=x_test.shape).astype(np.float32)
    probe = fit_probe(*train)
    result = probe_comparison(probe, x_test, noisy, y_test)
    pred_clip = probe.predict(normalize(x_test.astype(np.float64)))
    pred_noisy = probe.predict(normalize(noisy.astype(np.float64)))
    assert result["probe_agreement"] == pytest.approx(float((pred_clip == pred_noisy).mean()))
    assert result["probe_accuracy_sae"] == pytest.approx(float((pred_noisy == y_test).mean()))
    assert 0.3 < result["probe_agreement"] < 0.95
    p = probe.predict_proba(normalize(x_test.astype(np.float64)))
    q = probe.predict_proba(normalize(noisy.astype(np.float64)))
    kl = (p * np.log(p / q)).sum(axis=1).mean()
    assert result["probe_kl_clip_to_sae"] == pytest.approx(kl, rel=1e-9)


def test_zero_sae_predicts_one_class():
    train, test = clusters(400, seed=6), clusters(200, seed=7)
    result = linear_probe(
        train=train, test=test, reconstruct=constant_sae(np.zeros(16)), device=CPU
    )
    # A zero row leaves only the intercepts, the same class for every image.
    majority = np.bincount(test[1], minlength=4).max() / 200
    assert result["probe_accuracy_sae"] <= majority
    assert result["probe_kl_clip_to_sae"] > 0.5
