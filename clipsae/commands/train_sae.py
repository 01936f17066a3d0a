"""Train a sparse autoencoder on activations (a .npy file or a shard directory).

Writes OUT/sae_weights.safetensors, cfg.json, sparsity.safetensors, log.parquet and metrics.json
(reconstruction metrics on --val when given, else on the training rows; FVU is the dataset-level
sum ||x - x_hat||^2 / sum ||x - mean x||^2). Re-running with the same arguments resumes from
OUT/checkpoint.safetensors if a previous run was interrupted.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from clipsae.atomic import atomic_write_json
from clipsae.device import pick_device
from clipsae.metrics import reconstruction_metrics
from clipsae.sae import ARCHITECTURES, SAEConfig, TrainConfig, load_sae, train_sae
from clipsae.shards import ActivationStore, load_activations

METRICS_FILE = "metrics.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--activations", type=Path, required=True, help="ACTS.npy or shard dir")
    parser.add_argument("--val", type=Path, help="validation activations (.npy or shard dir)")
    parser.add_argument("--arch", default="topk", choices=sorted(ARCHITECTURES))
    parser.add_argument("--k", type=int, default=32, help="active latents per row (TopK)")
    parser.add_argument("--expansion", type=int, default=8, help="d_sae = expansion * d_in")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    parser.add_argument(
        "--lr-schedule", default=defaults.lr_schedule, choices=["cosine", "linear", "constant"]
    )
    parser.add_argument("--normalize", default=defaults.normalize, choices=["none", "mean_norm"])
    parser.add_argument("--aux-k-coef", type=float, default=defaults.aux_k_coef)
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def _open(path: Path) -> ActivationStore | np.ndarray:
    """Shard directories stream (the trainer loads them if they fit); .npy files load at once."""
    return ActivationStore(path) if path.is_dir() else load_activations(path)


def _batches(data: ActivationStore | np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    if isinstance(data, ActivationStore):
        return data.iter_batches(batch_size)
    return (data[i : i + batch_size] for i in range(0, len(data), batch_size))


def run(args: argparse.Namespace) -> int:
    train = _open(args.activations)
    val = _open(args.val) if args.val else None
    d_in = train.d if isinstance(train, ActivationStore) else train.shape[1]
    cfg = SAEConfig(arch=args.arch, d_in=d_in, d_sae=args.expansion * d_in, k=args.k)
    tcfg = TrainConfig(
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        warmup_steps=args.warmup_steps,
        lr_schedule=args.lr_schedule,
        normalize=args.normalize,
        aux_k_coef=args.aux_k_coef,
    )
    device = pick_device(args.device)
    provenance = {"training_data": str(args.activations), "validation_data": str(args.val or "")}
    summary = train_sae(train, cfg, tcfg, args.out, val=val, device=device, extra=provenance)
    sae = load_sae(args.out, device=device)
    evaluated = val if val is not None else train
    metrics = reconstruction_metrics(sae, _batches(evaluated, args.batch_size), device=device)
    metrics |= {
        "evaluated_on": "val" if val is not None else "train",
        "train_seconds": summary["train_seconds"],
        "samples_per_second": summary["samples_per_second"],
        "steps": summary["steps"],
    }
    atomic_write_json(metrics, args.out / METRICS_FILE)
    return 0
