"""Train a sparse autoencoder on activations (a .npy file or a shard directory).

Writes OUT/sae_weights.safetensors, cfg.json, sparsity.safetensors, log.parquet and metrics.json
(reconstruction metrics on --val when given, else on the training rows; FVU is the dataset-level
sum ||x - x_hat||^2 / sum ||x - mean x||^2). Any key of a workflow config's `saes` entry can be
given with --set KEY=VALUE (e.g. --set dead_steps_threshold=10 --set k_list='[8, 16, 32]').
Re-running with the same arguments resumes from OUT/checkpoint.safetensors if a previous run was
interrupted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from clipsae.commands import add_device_argument
from clipsae.sae import ARCHITECTURES
from clipsae.steps.train import train

# Flags with their own option; everything else goes through --set.
_FLAGS = ("k", "expansion", "batch_size", "epochs", "lr", "seed")


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {text!r}")
    return key.strip().replace("-", "_"), yaml.safe_load(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--activations", type=Path, required=True, help="ACTS.npy or shard dir")
    parser.add_argument("--val", type=Path, help="validation activations (.npy or shard dir)")
    parser.add_argument("--arch", default="topk", choices=sorted(ARCHITECTURES))
    parser.add_argument("--k", type=int, help="active latents per row (TopK family)")
    parser.add_argument("--expansion", type=float, default=8, help="d_sae = expansion * d_in")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
        help="any other SAE or training key (see clipsae/sae/config.py)",
    )  # fmt: skip
    add_device_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def sae_entry(args: argparse.Namespace) -> dict:
    """The same dict a workflow config's ``saes`` entry would hold."""
    entry = {"arch": args.arch}
    entry |= {key: getattr(args, key) for key in _FLAGS if getattr(args, key) is not None}
    return entry | dict(args.set)


def run(args: argparse.Namespace) -> int:
    provenance = {"training_data": str(args.activations), "validation_data": str(args.val or "")}
    train(
        entry=sae_entry(args),
        train_path=args.activations,
        val_path=args.val,
        out_dir=args.out,
        extra=provenance,
        device=args.device,
    )
    return 0
