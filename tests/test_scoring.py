"""Detection scoring: planted latents on synthetic CLIP-like embeddings with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from configs import detection_sampling

from clipsae.interpret.scoring import (
    latent_activations,
    sample_detection_rows,
    score_names,
)
from clipsae.sae import TopKConfig, build_sae

D = 64
N_CONCEPTS = 8  # concepts that have images
N_ABSENT = 20  # concepts with no image: names that are wrong for every latent
PER_CONCEPT = 250
SIGMA = 0.15  # isotropic image noise per dimension (noise norm about SIGMA * sqrt(D) = 1.2)


def null_auroc_sd(n_positive: int, n_negative: int) -> float:
    """Standard deviation of the AUROC of a score unrelated to the labels (Mann-Whitney U null).

    Var(U / (n1 n0)) = (n1 + n0 + 1) / (12 n1 n0) when positives and negatives are exchangeable.
    """
    return math.sqrt((n_positive + n_negative + 1) / (12 * n_positive * n_negative))


@pytest.fixture(scope="module")
def space():
    """Orthonormal concept directions, images of the first N_CONCEPTS, and a modality gap.

    Images are unit(gap + concept + noise), texts unit(text_gap + concept + text noise). Every
    concept is orthogonal to every other and to both gaps, and the text noise lies in directions
    no concept uses, so the text of an absent concept has the same distribution of cosines with
    the images of every present concept: its AUROC for any split of the images by concept
    follows the exchangeable null exactly.
    """
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((D, D)))
    n_used = N_CONCEPTS + N_ABSENT
    concepts, gap, text_gap = basis[:, :n_used].T, basis[:, n_used], basis[:, n_used + 1]
    spare = basis[:, n_used + 2 :].T
    concept_of = np.repeat(np.arange(N_CONCEPTS), PER_CONCEPT)
    images = gap + concepts[concept_of] + SIGMA * rng.standard_normal((len(concept_of), D))
    text_noise = 0.3 * rng.standard_normal((n_used, len(spare))) @ spare / math.sqrt(len(spare))
    texts = text_gap + concepts + text_noise
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    return unit(images), unit(texts), concept_of


def planted(concept_of: np.ndarray, concept: int, seed: int) -> np.ndarray:
    """A latent that fires exactly on one concept's images, with a spread of strengths."""
    values = np.random.default_rng(seed).uniform(0.2, 3.0, len(concept_of))
    return np.where(concept_of == concept, values, 0.0).astype(np.float32)


def test_planted_latent_scores_high_with_its_name_and_chance_with_wrong_ones(space) -> None:
    images, texts, concept_of = space
    acts = np.stack([planted(concept_of, 0, seed=s) for s in range(1 + N_ABSENT)], axis=1)
    # latent 0 gets the right name, latents 1..N_ABSENT each an absent concept's name
    names = texts[[0, *range(N_CONCEPTS, N_CONCEPTS + N_ABSENT)]]
    got = score_names(
        latents=list(range(acts.shape[1])),
        name_embeddings=names,
        activations=acts,
        image_embeddings=images,
        sampling=detection_sampling(per_quantile=25, n_negative=1000),
    ).per_latent
    assert got["n_positive"].to_list() == [PER_CONCEPT] * acts.shape[1]
    assert got["n_negative"].to_list() == [1000] * acts.shape[1]
    assert got["auroc"][0] >= 0.95
    # 4 null standard deviations: 250 positives against 1000 negatives gives sd = 0.0204
    tolerance = 4 * null_auroc_sd(PER_CONCEPT, 1000)
    wrong = got["auroc"].to_numpy()[1:]
    assert np.all(np.abs(wrong - 0.5) < tolerance), (wrong, tolerance)


def test_named_latents_beat_shuffled_names(space) -> None:
    images, texts, concept_of = space
    acts = np.stack([planted(concept_of, c, seed=c) for c in range(N_CONCEPTS)], axis=1)
    scores = score_names(
        latents=[10 + c for c in range(N_CONCEPTS)],
        name_embeddings=texts[:N_CONCEPTS],
        activations=acts,
        image_embeddings=images,
        sampling=detection_sampling(),
    )
    assert scores.n_scored == N_CONCEPTS
    assert scores.per_latent["latent"].to_list() == [10 + c for c in range(N_CONCEPTS)]
    assert scores.median_auroc >= 0.95
    # A shuffled name is another present concept's: its images are 1/7 of the negatives and
    # rank above every positive, the rest are at chance, so the expected AUROC is 6/7 * 0.5.
    sd = null_auroc_sd(100, 100)
    assert abs(scores.median_shuffled - 6 / 7 * 0.5) < 4 * sd
    assert np.all(scores.per_latent["auroc_shuffled"].to_numpy() < scores.median_auroc)


def test_scores_are_deterministic_per_seed_and_skip_silent_latents(space) -> None:
    images, texts, concept_of = space
    acts = np.stack([planted(concept_of, 1, seed=0), np.zeros(len(concept_of))], axis=1)
    kwargs = dict(latents=[0, 1], name_embeddings=texts[:2], activations=acts)
    first = score_names(**kwargs, image_embeddings=images, sampling=detection_sampling(seed=3))
    again = score_names(**kwargs, image_embeddings=images, sampling=detection_sampling(seed=3))
    assert first.per_latent.equals(again.per_latent)
    assert first.per_latent["auroc"][1] is None
    assert first.per_latent["n_positive"][1] == 0
    assert first.n_scored == 1


def test_positives_are_drawn_from_every_quantile() -> None:
    rng = np.random.default_rng(0)
    acts = np.zeros(3000)
    active = rng.choice(3000, size=1000, replace=False)
    acts[active] = rng.uniform(0.1, 5.0, 1000)
    pos, neg = sample_detection_rows(
        acts,
        sampling=detection_sampling(n_quantiles=10, per_quantile=3, n_negative=50),
        rng=np.random.default_rng(1),
    )
    assert len(pos) == 30 and len(set(pos)) == 30
    assert len(neg) == 50 and np.all(acts[neg] == 0)
    deciles = np.quantile(acts[active], np.linspace(0, 1, 11))
    counts = np.histogram(acts[pos], bins=deciles)[0]
    assert counts.tolist() == [3] * 10


def test_few_activating_images_are_all_used() -> None:
    acts = np.array([0.0, 2.0, 0.0, 1.0, 0.0, 3.0])
    pos, neg = sample_detection_rows(
        acts,
        sampling=detection_sampling(per_quantile=5, n_negative=10),
        rng=np.random.default_rng(0),
    )
    assert pos.tolist() == [1, 3, 5]
    assert neg.tolist() == [0, 2, 4]


def test_bad_sampling_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="per_quantile must be at least 1, got 0"):
        detection_sampling(per_quantile=0)


def test_bad_shapes_are_refused_with_what_differs(space) -> None:
    images, texts, concept_of = space
    acts = planted(concept_of, 0, seed=0)[:, None]
    with pytest.raises(ValueError, match="same images in the same order"):
        score_names(
            latents=[0],
            name_embeddings=texts[:1],
            activations=acts,
            image_embeddings=images[:10],
            sampling=detection_sampling(),
        )
    with pytest.raises(ValueError, match="not the same CLIP space"):
        score_names(
            latents=[0],
            name_embeddings=texts[:1, :32],
            activations=acts,
            image_embeddings=images,
            sampling=detection_sampling(),
        )
    with pytest.raises(ValueError, match="2 name embeddings for 1 latents"):
        score_names(
            latents=[0],
            name_embeddings=texts[:2],
            activations=acts,
            image_embeddings=images,
            sampling=detection_sampling(),
        )


def test_latent_activations_keeps_the_named_columns_of_a_real_sae() -> None:
    sae = build_sae(TopKConfig(d_in=16, d_sae=48, k=4), torch.Generator().manual_seed(0)).eval()
    x = np.random.default_rng(0).standard_normal((70, 16)).astype(np.float32)
    with torch.inference_mode():
        full = sae.encode(torch.from_numpy(x)).numpy()
    batches = (x[i : i + 32] for i in range(0, 70, 32))
    got = latent_activations(sae.encode, batches, latents=[5, 0, 47])
    np.testing.assert_allclose(got, full[:, [5, 0, 47]], atol=1e-6)
