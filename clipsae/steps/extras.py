"""Step ``eval_extras``: the numbers beside zero-shot that a careful reader asks for, cheap enough
to run for every evaluation: a linear probe, the error baselines and the inference-k sweep.

- Linear probe (``clipsae.evaluate.probe``): fitted on at most ``probe_rows`` rows of the
  evaluation dataset's train split (a seeded sample), scored on its test split as CLIP sees it
  and as the SAE reconstructs it.
- Error baselines (``clipsae.evaluate.baselines``), ``final`` layer only: zero-shot accuracy with
  the reconstruction error alone in place of the embedding, and with the embedding replaced by
  the train split's mean. Inner layers would need a spliced forward pass per baseline; they are
  reported as skipped, with the reason.
- Sweep (``clipsae.evaluate.sweep``): reconstruction metrics at each inference k of a TopK-family
  SAE (powers of two up to the dense path), or at each nested size of a Matryoshka SAE.
- Monosemanticity (``clipsae.evaluate.monosemanticity``), when ``embeddings`` is given: the MS
  score of the SAE's latents and of the raw dimensions of its layer on a seeded subset of the
  test images, the pairwise similarity of two images being the cosine of their ``final``
  embeddings (``embeddings``: the extraction of that layer for the same test split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipsae.activations.row_index import read_row_ids, read_row_labels
from clipsae.activations.shards import ActivationStore, batches_of, sample_positions
from clipsae.evaluate.baselines import activation_mean, zeroshot_error_baselines
from clipsae.evaluate.monosemanticity import image_subset, sae_vs_clip_monosemanticity
from clipsae.evaluate.probe import linear_probe
from clipsae.evaluate.sweep import k_sweep, nested_sweep
from clipsae.runtime.atomic import atomic_write_json
from clipsae.runtime.device import DeviceSpec, pick_device
from clipsae.sae import load_sae
from clipsae.sae.matryoshka import MatryoshkaKSAE, MatryoshkaPrefixSAE
from clipsae.sae.topk import TopKSAE

# A probe on more rows than this changes little and costs minutes of L-BFGS on a CPU.
PROBE_ROWS = 20000


def _rows_and_labels(acts_dir: Path, *, max_rows: int | None) -> tuple[np.ndarray, np.ndarray]:
    store, labels = ActivationStore(acts_dir), read_row_labels(acts_dir)
    if max_rows is None or len(store) <= max_rows:
        return store.load_all(), labels
    rows = sample_positions(len(store), n=max_rows, seed=0)
    return store.take(rows), labels[rows]


def monosemanticity(
    sae, rows: np.ndarray, test_acts: Path, embeddings: Path, *, max_images: int, seed: int
) -> dict:
    """MS of the SAE's latents and of the layer's raw dimensions on a seeded subset of the test
    rows (``rows``: the activations of ``test_acts``), judged by the ``embeddings`` extraction
    of the same images, row for row."""
    if read_row_ids(embeddings) != read_row_ids(test_acts):
        raise ValueError(
            f"{embeddings} and {test_acts} hold different images: the monosemanticity score "
            "needs the final embedding of every scored activation row"
        )
    subset = image_subset(len(rows), max_images, seed)
    scores = sae_vs_clip_monosemanticity(
        sae=sae, activations=rows[subset], embeddings=ActivationStore(embeddings).take(subset)
    )
    return {**scores, "seed": seed, "similarity": "final"}


def eval_extras(
    *,
    sae_dir: Path,
    train_acts: Path,
    test_acts: Path,
    classes_npy: Path,
    layer: str,
    out_json: Path,
    probe_rows: int = PROBE_ROWS,
    embeddings: Path | None = None,
    monosemanticity_settings: dict | None = None,
    device: DeviceSpec = "auto",
) -> dict:
    """``monosemanticity_settings`` (``max_images``, ``seed``; the config's
    ``evaluation.monosemanticity``) and ``embeddings`` together add the MS scores."""
    dev = pick_device(device)
    sae = load_sae(Path(sae_dir), dev).eval()
    train = _rows_and_labels(Path(train_acts), max_rows=probe_rows)
    test = _rows_and_labels(Path(test_acts), max_rows=None)
    result: dict = {
        "probe": linear_probe(train=train, test=test, reconstruct=sae, device=dev),
        "probe_rows": len(train[1]),
    }
    if layer == "final":
        result["baselines"] = zeroshot_error_baselines(
            batches=lambda: zip(batches_of(test[0]), batches_of(test[1]), strict=True),
            class_embeddings=np.load(classes_npy),
            reconstruct=sae,
            mean=activation_mean(batches_of(train[0])),
            device=dev,
        )
    else:
        result["baselines_skipped"] = (
            f"{layer}: the error baselines need a spliced forward pass each; run for final only"
        )
    if isinstance(sae, MatryoshkaKSAE | MatryoshkaPrefixSAE):
        result["sweep"] = nested_sweep(sae, lambda: batches_of(test[0]), device=dev)
    elif isinstance(sae, TopKSAE):
        result["sweep"] = k_sweep(sae, lambda: batches_of(test[0]), device=dev)
    if embeddings is not None and monosemanticity_settings is not None:
        result["monosemanticity"] = monosemanticity(
            sae, test[0], Path(test_acts), Path(embeddings), **monosemanticity_settings
        )
    atomic_write_json(result, Path(out_json))
    return result
