"""Step ``encode_features``: per-latent statistics and top images over the test split."""

from __future__ import annotations

from pathlib import Path

from clipsae.activations.shards import EVAL_BATCH, ActivationStore
from clipsae.interpret.features import latent_stats_and_top, write_features
from clipsae.runtime.device import pick_device
from clipsae.sae import load_sae


def encode_features(
    sae_dir: Path, acts_dir: Path, out_dir: Path, top_k: int, device: str = "auto"
) -> None:
    sae = load_sae(Path(sae_dir), pick_device(device)).eval()
    batches = ActivationStore(acts_dir).iter_batches(EVAL_BATCH)
    stats, top = latent_stats_and_top(sae.encode, batches, sae.cfg.d_sae, top_k)
    write_features(stats, top, Path(out_dir))
