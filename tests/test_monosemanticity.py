"""The MonoSemanticity score of Pach et al. 2025, computed without the N × N matrix."""

from __future__ import annotations

import numpy as np
import pytest
from saes import constant_sae

from clipsae.evaluate.monosemanticity import (
    image_subset,
    monosemanticity_scores,
    sae_vs_clip_monosemanticity,
)


def in_batches(acts: np.ndarray, emb: np.ndarray, size: int):
    return lambda: [(acts[i : i + size], emb[i : i + size]) for i in range(0, len(acts), size)]


def brute_force(acts: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """The definition as written: every pair of distinct images, weighted."""
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sim = e @ e.T
    off = ~np.eye(len(acts), dtype=bool)
    scores = []
    for a in acts.T:
        s = (a - a.min()) / (a.max() - a.min())
        weight = np.outer(s, s)[off]
        scores.append((weight * sim[off]).sum() / weight.sum())
    return np.array(scores)


def test_matches_the_pairwise_definition_for_any_batching():
    rng = np.random.default_rng(0)
    acts, emb = rng.normal(size=(37, 6)), rng.normal(size=(37, 5))
    expected = brute_force(acts, emb)
    for size in (37, 10, 1):
        got = monosemanticity_scores(in_batches(acts, emb, size))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_planted_latent_on_identical_images_scores_one_and_a_mixed_one_lower():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(40, 8))
    emb[:10] = emb[0]  # ten copies of one image
    acts = np.zeros((40, 3))
    acts[:10, 0] = rng.uniform(0.5, 2.0, size=10)  # fires on the copies only
    acts[:5, 1] = 1.0  # fires on five copies and five unrelated images
    acts[20:25, 1] = 1.0
    acts[:, 2] = 3.0  # never varies: no score
    scores = monosemanticity_scores(in_batches(acts, emb, 16))
    assert scores[0] == pytest.approx(1.0, abs=1e-12)
    assert scores[1] < 0.6
    assert scores[1] == pytest.approx(brute_force(acts[:, 1:2], emb)[0], abs=1e-12)
    assert np.isnan(scores[2])


def test_a_unit_weighing_a_single_image_has_no_score():
    acts = np.zeros((5, 1))
    acts[2] = 1.0
    emb = np.random.default_rng(2).normal(size=(5, 4))
    assert np.isnan(monosemanticity_scores(in_batches(acts, emb, 2))[0])


def test_sae_vs_clip_scores_the_latents_and_the_raw_dimensions():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    emb = rng.normal(size=(50, 4))
    result = sae_vs_clip_monosemanticity(
        sae=constant_sae(np.zeros(6)), activations=x, embeddings=emb, batch_size=16
    )
    assert result["n_images"] == 50
    # Codes that are always 0 never vary, so no latent has a score.
    assert result["ms_sae_scored"] == 0 and np.isnan(result["ms_sae"])
    assert result["ms_clip_scored"] == 6
    assert result["ms_clip"] == pytest.approx(brute_force(x.astype(np.float64), emb).mean())


def test_image_subset_is_seeded_and_sorted():
    picked = image_subset(100, 10, seed=4)
    assert len(set(picked)) == 10 and list(picked) == sorted(picked)
    assert (picked == image_subset(100, 10, seed=4)).all()
    assert (image_subset(5, None) == np.arange(5)).all()
    assert (image_subset(5, 9) == np.arange(5)).all()
