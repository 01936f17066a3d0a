"""Zero-shot accuracy of CLIP and CLIP+SAE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from saes import identity_sae
from torch.nn import functional as F

from clipsae.data import build_dataset
from clipsae.evaluate.zeroshot import ZeroShotTally, zeroshot_on_embeddings, zeroshot_spliced
from clipsae.models.clip import load_clip


def random_problem(*, seed: int, n_classes: int, n: int, noise: float) -> tuple[np.ndarray, ...]:
    """Unit class embeddings, clean and noisy image embeddings, and labels."""
    rng = np.random.default_rng(seed)
    classes = rng.normal(size=(n_classes, 16)).astype(np.float32)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    clean = rng.normal(size=(n, 16)).astype(np.float32)
    noisy = clean + noise * rng.normal(size=clean.shape).astype(np.float32)
    return classes, clean, noisy, rng.integers(0, n_classes, size=n)


def test_tally_matches_a_direct_computation():
    classes, clean, noisy, labels = random_problem(seed=0, n_classes=5, n=40, noise=0.5)
    tally = ZeroShotTally(classes, logit_scale=10.0)
    for s in (slice(0, 13), slice(13, 40)):
        tally.update(
            torch.from_numpy(clean[s]), torch.from_numpy(noisy[s]), torch.from_numpy(labels[s])
        )
    got = tally.result()

    def logp(x):
        return F.log_softmax(
            10.0 * F.normalize(torch.from_numpy(x), dim=-1) @ torch.from_numpy(classes).T, -1
        )

    lc, ln = logp(clean), logp(noisy)
    assert got["accuracy_clip"] == pytest.approx(float((lc.argmax(1).numpy() == labels).mean()))
    assert got["accuracy_sae"] == pytest.approx(float((ln.argmax(1).numpy() == labels).mean()))
    assert got["agreement"] == pytest.approx(float((lc.argmax(1) == ln.argmax(1)).float().mean()))
    kl = (lc.exp() * (lc - ln)).sum(1).mean()
    assert got["kl_clip_to_sae"] == pytest.approx(float(kl), rel=1e-4)


def test_top5_counts_labels_among_the_five_best_classes():
    classes, clean, noisy, labels = random_problem(seed=1, n_classes=12, n=200, noise=2.0)
    tally = ZeroShotTally(classes)
    tally.update(torch.from_numpy(clean), torch.from_numpy(noisy), torch.from_numpy(labels))
    got = tally.result()
    for key, x in (("clip", clean), ("sae", noisy)):
        ranks = np.argsort(-(x @ classes.T), axis=1)[:, :5]  # same order as the softmax's
        expected = float((ranks == labels[:, None]).any(1).mean())
        assert got[f"top5_{key}"] == pytest.approx(expected)
        assert got[f"accuracy_{key}"] <= got[f"top5_{key}"] < 1
    few = ZeroShotTally(classes[:3])  # fewer than 5 classes: every label is in the top 5
    few.update(torch.from_numpy(clean), torch.from_numpy(noisy), torch.from_numpy(labels % 3))
    assert few.result()["top5_clip"] == few.result()["top5_sae"] == 1.0


def test_identity_sae_leaves_embedding_zero_shot_unchanged():
    rng = np.random.default_rng(1)
    classes = rng.normal(size=(4, 8)).astype(np.float32)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    emb = rng.normal(size=(30, 8)).astype(np.float32)
    labels = rng.integers(0, 4, size=30)
    sae = identity_sae(8)
    with torch.no_grad():
        torch.testing.assert_close(sae(torch.from_numpy(emb)), torch.from_numpy(emb))
    result = zeroshot_on_embeddings(
        [(emb[:17], labels[:17]), (emb[17:], labels[17:])], classes, sae, torch.device("cpu")
    )
    assert result["accuracy_sae"] == result["accuracy_clip"]
    assert result["agreement"] == 1.0
    assert result["kl_clip_to_sae"] == pytest.approx(0.0, abs=1e-6)
    assert result["n"] == 30


def test_spliced_identity_sae_equals_clip_and_a_bad_sae_does_not():
    torch.manual_seed(0)
    clip = load_clip("clipsae-tiny-vit", "none", device="cpu")
    dataset = build_dataset("s", {"source": "synthetic", "n_train": 0, "n_test": 12, "seed": 4})
    records = dataset.records()
    classes = (
        np.random.default_rng(2).normal(size=(len(dataset.class_names), 128)).astype(np.float32)
    )
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    width = clip.model.visual.transformer.width
    same = zeroshot_spliced(
        clip, dataset, records, "block1", classes, identity_sae(width), batch_size=5
    )
    assert same["accuracy_sae"] == same["accuracy_clip"]
    assert same["agreement"] == 1.0
    assert same["kl_clip_to_sae"] == pytest.approx(0.0, abs=1e-5)
    broken = zeroshot_spliced(
        clip, dataset, records, "block1", classes, lambda x: -5 * x, batch_size=5
    )
    assert broken["kl_clip_to_sae"] > 1e-3
