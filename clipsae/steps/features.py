"""Step ``encode_features``: per-latent statistics, top and weak images over the test split."""

from __future__ import annotations

from pathlib import Path

from clipsae.activations.shards import EVAL_BATCH, ActivationStore
from clipsae.interpret.features import WeakSampling, latent_stats_and_top, write_features
from clipsae.runtime.device import DeviceSpec, pick_device
from clipsae.sae import load_sae


def encode_features(
    *,
    sae_dir: Path,
    acts_dir: Path,
    out_dir: Path,
    top_k: int,
    weak: WeakSampling | None,
    device: DeviceSpec = "auto",
) -> None:
    """Write the features tables; ``weak`` gives collages their contrast row, ``None`` leaves
    ``weak_images.parquet`` empty. The SAE and the batches it encodes share the one device
    picked here."""
    dev = pick_device(device)
    sae = load_sae(Path(sae_dir), dev).eval()
    batches = ActivationStore(acts_dir).iter_batches(EVAL_BATCH)
    d_sae = sae.cfg.d_sae
    features = latent_stats_and_top(sae.encode, batches, d_sae, top_k, device=dev, weak=weak)
    write_features(features, Path(out_dir))
