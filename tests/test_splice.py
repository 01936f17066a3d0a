"""The SpLiCE baseline: non-negative sparse decomposition onto centred concept embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipsae.evaluate.splice import SpliceDecomposer, splice_evaluation

D, K = 64, 200


@pytest.fixture
def planted():
    """Unit image embeddings whose centred direction is a non-negative combination of three of
    200 centred concepts: ``x = mean + c * z``, with c chosen so that ``||x|| = 1``."""
    rng = np.random.default_rng(0)
    # Concepts share an offset, as CLIP text embeddings share a cone: centring removes it.
    concepts = rng.normal(size=(K, D)) + 0.8 * rng.normal(size=D)
    mean = rng.normal(size=D)
    mean *= 0.6 / np.linalg.norm(mean)
    decomposer = SpliceDecomposer(concepts, mean, l1=1e-3)
    weights = np.zeros((8, K))
    for row in weights:
        row[rng.choice(K, size=3, replace=False)] = rng.uniform(0.5, 2.0, size=3)
    z = weights @ decomposer.dictionary
    z_unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    along = z_unit @ mean
    c = -along + np.sqrt(along**2 + 1 - mean @ mean)
    x = mean + c[:, None] * z_unit
    return decomposer, x, weights / np.linalg.norm(z, axis=1, keepdims=True)


def test_recovers_a_planted_sparse_combination(planted):
    decomposer, x, expected = planted
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-12)
    got = decomposer.weights(x)
    assert ((got > 0) == (expected > 0)).all()  # exactly the planted concepts, no others
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-3 * expected.max())
    recon = decomposer.recompose(got)
    np.testing.assert_allclose(np.linalg.norm(recon, axis=1), 1.0, atol=1e-12)
    assert ((recon * x).sum(axis=1) > 0.98).all()


def mean_pair_cosine(rows: np.ndarray) -> float:
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    sim = unit @ unit.T
    return float(sim[~np.eye(len(rows), dtype=bool)].mean())


def test_dictionary_is_centred_and_unit_norm():
    rng = np.random.default_rng(2)
    concepts = rng.normal(size=(K, D)) + 0.8 * rng.normal(size=D)
    decomposer = SpliceDecomposer(concepts, np.zeros(D))
    np.testing.assert_allclose(np.linalg.norm(decomposer.dictionary, axis=1), 1.0, atol=1e-12)
    # Raw concepts share a cone; centred, they no longer point one way on average.
    assert mean_pair_cosine(concepts) > 0.3
    assert abs(mean_pair_cosine(decomposer.dictionary)) < 0.02
    with pytest.raises(ValueError, match="image_mean"):
        SpliceDecomposer(concepts, np.zeros(D + 1))


def test_evaluation_reports_accuracy_l0_and_cosine(planted):
    decomposer, x, _ = planted
    classes = np.random.default_rng(1).normal(size=(3, D)).astype(np.float32)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    labels = np.argmax(x @ classes.T, axis=1)  # CLIP is right on every image
    x32 = x.astype(np.float32)
    result = splice_evaluation(decomposer, [(x32[:5], labels[:5]), (x32[5:], labels[5:])], classes)
    recon = decomposer.recompose(decomposer.weights(x32))
    assert result["n"] == 8 and result["accuracy_clip"] == 1.0
    assert result["l0"] == 3.0
    assert result["cosine"] == pytest.approx(float((recon * x).sum(axis=1).mean()), abs=1e-6)
    assert result["accuracy_sae"] == pytest.approx(
        float((np.argmax(recon @ classes.T, axis=1) == labels).mean())
    )
    assert (result["n_concepts"], result["method"]) == (K, "splice")
    # The decomposer stands where an SAE's reconstruction does.
    out = decomposer(torch.from_numpy(x32))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), recon, atol=1e-6)
