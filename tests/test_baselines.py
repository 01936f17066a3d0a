"""Error baselines of zero-shot: the reconstruction error alone, and the layer mean-ablated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from saes import constant_sae

from clipsae.evaluate.baselines import (
    activation_mean,
    mean_ablated,
    zeroshot_error_baselines,
)
from clipsae.evaluate.zeroshot import zeroshot_on_embeddings

CPU = torch.device("cpu")


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    classes = rng.normal(size=(4, 8)).astype(np.float32)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    labels = rng.integers(0, 4, size=60)
    # Embeddings near their class prompt, off-centre, so that the mean is far from zero.
    emb = (classes[labels] + 0.6 * rng.normal(size=(60, 8)) + 0.5).astype(np.float32)
    return classes, emb, labels


def batches(emb: np.ndarray, labels: np.ndarray):
    return lambda: [(emb[:23], labels[:23]), (emb[23:], labels[23:])]


def test_activation_mean_streams_in_float64(data):
    _, emb, _ = data
    got = activation_mean([emb[:7], emb[7:40], emb[40:]])
    np.testing.assert_allclose(got, emb.astype(np.float64).mean(axis=0), rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="no rows"):
        activation_mean([])


def test_zero_sae_error_is_the_activation_and_a_mean_sae_is_the_ablation(data):
    classes, emb, labels = data
    mean = activation_mean([emb])
    zero = zeroshot_error_baselines(
        batches=batches(emb, labels),
        class_embeddings=classes,
        reconstruct=constant_sae(np.zeros(8)),
        mean=mean,
        device=CPU,
    )
    # The zero SAE explains nothing: its error is the activation, so CLIP's numbers come back.
    error = zero["error_only"]
    assert error["accuracy_sae"] == error["accuracy_clip"] > 0.5
    assert error["agreement"] == 1.0
    assert error["kl_clip_to_sae"] == 0.0
    # An SAE that always outputs the mean is the mean ablation, number for number.
    mean_sae = zeroshot_on_embeddings(batches(emb, labels)(), classes, constant_sae(mean), CPU)
    assert mean_sae == zero["mean_ablated"]
    # ... which predicts the mean's class for every image.
    constant_class = int(np.argmax(classes @ mean))
    clip_pred = np.argmax(emb @ classes.T, axis=1)
    ablated = zero["mean_ablated"]
    assert ablated["accuracy_sae"] == pytest.approx(float((labels == constant_class).mean()))
    assert ablated["agreement"] == pytest.approx(float((clip_pred == constant_class).mean()))
    assert ablated["accuracy_sae"] < error["accuracy_clip"]


def test_mean_ablation_follows_the_rows_device_and_dtype():
    ablate = mean_ablated(np.array([1.0, 2.0], dtype=np.float32))
    out = ablate(torch.zeros(3, 2, dtype=torch.float64))
    assert out.dtype == torch.float64 and out.shape == (3, 2)
    assert out.tolist() == [[1.0, 2.0]] * 3
