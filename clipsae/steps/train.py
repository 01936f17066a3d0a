"""Step ``train_sae``: an SAE from a ``saes`` entry, with its held-out metrics."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from clipsae.activations.shards import ActivationStore, batches_of, open_activations, subsample
from clipsae.config.matrix import TrainingData
from clipsae.runtime.atomic import atomic_write_json
from clipsae.runtime.device import DeviceSpec, pick_device
from clipsae.sae import load_sae, train_sae
from clipsae.sae.entry import sae_configs
from clipsae.sae.metrics import reconstruction_metrics


def train(
    *,
    entry: dict,
    data: TrainingData | None = None,
    train_path: Path,
    val_path: Path | None,
    out_dir: Path,
    extra: dict,
    device: DeviceSpec = "auto",
) -> dict:
    """Train the SAE of a config ``saes`` entry (its hyper-parameters) on ``train_path``, or on
    the seeded subsample of it that ``data`` asks for; metrics.json is measured on the validation
    rows when given, else on the training rows (and says which)."""
    train_data = open_activations(train_path)
    val_data = open_activations(val_path) if val_path is not None else None
    d_in = train_data.d if isinstance(train_data, ActivationStore) else train_data.shape[1]
    cfg, tcfg = sae_configs(entry, d_in)
    data = data or TrainingData()
    extra = {**activation_source(train_data), **extra, "training_rows": asdict(data)}
    if data.max_images is not None:
        train_data = subsample(train_data, n=data.max_images, seed=data.subsample_seed)
    dev = pick_device(device)
    summary = train_sae(train_data, cfg, tcfg, Path(out_dir), val=val_data, device=dev, extra=extra)
    sae = load_sae(Path(out_dir), dev)
    evaluated = val_data if val_data is not None else train_data
    metrics = {
        **reconstruction_metrics(sae, batches_of(evaluated)),
        "evaluated_on": "val" if val_data is not None else "train",
        **summary,
    }
    atomic_write_json(metrics, Path(out_dir) / "metrics.json")
    return metrics


def activation_source(data: ActivationStore | np.ndarray) -> dict:
    """What the training activations came from (CLIP architecture, weights and their seed,
    layer, dataset or image folder, split) as their extraction recorded it, so the SAE's
    ``cfg.json`` (and an export's model card) names its model without the workflow config.
    Nothing for a ``.npy``."""
    if not isinstance(data, ActivationStore):
        return {}
    recorded = data.meta.extra
    keys = ("arch", "pretrained", "seed", "layer", "dataset", "images", "split")
    return {"activations": {key: recorded[key] for key in keys if key in recorded}}
