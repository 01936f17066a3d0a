"""Step ``eval_zeroshot``: zero-shot accuracy of CLIP and of CLIP with the SAE spliced in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from clipsae.activations.row_index import read_row_labels
from clipsae.activations.shards import EVAL_BATCH, ActivationStore
from clipsae.evaluate.zeroshot import zeroshot_on_embeddings, zeroshot_spliced
from clipsae.models.architectures import parse_layer
from clipsae.models.clip import open_model
from clipsae.runtime.atomic import atomic_write_json
from clipsae.runtime.device import DeviceSpec, pick_device
from clipsae.sae import load_sae
from clipsae.steps.common import split_records


def labelled_batches(acts_dir: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(activations, labels) batches of an extraction, in row order."""
    labels = read_row_labels(acts_dir)
    start = 0
    for batch in ActivationStore(acts_dir).iter_batches(EVAL_BATCH):
        yield batch, labels[start : start + len(batch)]
        start += len(batch)


def eval_zeroshot(
    *,
    sae_dir: Path,
    acts_dir: Path,
    classes_npy: Path,
    layer: str,
    model: dict,
    weights: Path | None,
    dataset_name: str,
    dataset_entry: dict,
    index_dir: Path,
    out_json: Path,
    device: DeviceSpec = "auto",
) -> dict:
    """Embedding layer: from stored activations. Inner layers: spliced forward over the images.

    The SAE, the CLIP model and every input batch go to the one device picked here.
    """
    dev = pick_device(device)
    sae = load_sae(Path(sae_dir), dev).eval()
    classes = np.load(classes_npy)
    if parse_layer(layer, model["arch"]) is None:
        result = zeroshot_on_embeddings(labelled_batches(Path(acts_dir)), classes, sae, dev)
    else:
        clip = open_model(model, weights, device=dev)
        dataset, records = split_records(dataset_name, dataset_entry, index_dir, "test")
        result = zeroshot_spliced(
            clip,
            dataset,
            records,
            layer,
            classes,
            sae,
            batch_size=model.get("batch_size", 256),
        )
    atomic_write_json(result, Path(out_json))
    return result
