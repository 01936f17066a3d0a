"""Step ``eval_reconstruction``: reconstruction metrics on the test split."""

from __future__ import annotations

from pathlib import Path

from clipsae.activations.shards import EVAL_BATCH, ActivationStore
from clipsae.runtime.atomic import atomic_write_json
from clipsae.runtime.device import DeviceSpec, pick_device
from clipsae.sae import load_sae
from clipsae.sae.metrics import reconstruction_metrics


def eval_reconstruction(
    *, sae_dir: Path, acts_dir: Path, out_json: Path, device: DeviceSpec = "auto"
) -> dict:
    dev = pick_device(device)
    sae = load_sae(Path(sae_dir), dev)
    batches = ActivationStore(acts_dir).iter_batches(EVAL_BATCH)
    metrics = reconstruction_metrics(sae, batches, device=dev)
    atomic_write_json(metrics, Path(out_json))
    return metrics
