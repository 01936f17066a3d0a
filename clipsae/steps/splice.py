"""Step ``eval_splice``: the SpLiCE baseline of one model on one evaluation dataset, at ``final``.

Each test image embedding (a seeded subset of at most ``max_images``) is decomposed into a
non-negative sparse combination of the vocabulary's text embeddings (``clipsae.evaluate.splice``),
both sides centred: the images on the mean of the dataset's train split, normalised row by row.
The result reads like a CLIP+SAE evaluation: zero-shot accuracy of CLIP and of the reconstruction
on the same images, the mean number of concepts per image (``l0``) and the mean cosine between an
embedding and its reconstruction. It needs no training, so it is the floor an SAE's
interpretable-by-construction rival sets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipsae.activations.row_index import read_row_labels
from clipsae.activations.shards import ActivationStore, batches_of, sample_positions
from clipsae.evaluate.baselines import activation_mean
from clipsae.evaluate.splice import SpliceDecomposer, splice_evaluation
from clipsae.runtime.atomic import atomic_write_json


def _unit_rows(batch: np.ndarray) -> np.ndarray:
    rows = np.asarray(batch, dtype=np.float64)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def eval_splice(
    *,
    train_acts: Path,
    test_acts: Path,
    classes_npy: Path,
    vocab_npy: Path,
    out_json: Path,
    l1: float,
    max_images: int | None,
    seed: int,
) -> dict:
    """``train_acts`` and ``test_acts``: ``final`` extractions of the evaluation dataset's two
    splits; ``vocab_npy``: the concept text embeddings; ``classes_npy``: the class embeddings."""
    image_mean = activation_mean(_unit_rows(b) for b in batches_of(ActivationStore(train_acts)))
    store = ActivationStore(Path(test_acts))
    # No SAE is involved: the subset is drawn here rather than by the monosemanticity module,
    # whose import of the SAE package would rerun this job after every trainer edit.
    n = len(store)
    subset = (
        np.arange(n)
        if max_images is None or max_images >= n
        else (sample_positions(n, n=max_images, seed=seed))
    )
    embeddings, labels = store.take(subset), read_row_labels(Path(test_acts))[subset]
    decomposer = SpliceDecomposer(np.load(vocab_npy), image_mean, l1=l1)
    result = splice_evaluation(
        decomposer,
        zip(batches_of(embeddings), batches_of(labels), strict=True),
        np.load(classes_npy),
    )
    result.update(seed=seed, n_test_split=len(store))
    atomic_write_json(result, Path(out_json))
    return result
