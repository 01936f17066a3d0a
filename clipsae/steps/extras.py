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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipsae.activations.extract import read_row_labels
from clipsae.activations.shards import ActivationStore, batches_of, sample_positions
from clipsae.evaluate.baselines import activation_mean, zeroshot_error_baselines
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


def eval_extras(
    *,
    sae_dir: Path,
    train_acts: Path,
    test_acts: Path,
    classes_npy: Path,
    layer: str,
    out_json: Path,
    probe_rows: int = PROBE_ROWS,
    device: DeviceSpec = "auto",
) -> dict:
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
    atomic_write_json(result, Path(out_json))
    return result
