"""Check latents against the factors that generated the images: best detector per factor value.

For each factor value (``color=red``) the best single latent and threshold are chosen on the
train split and scored (F1, AUROC) on the test split, for the SAE, for raw CLIP dimensions and
for random directions. Writes a Parquet table (one row per method, factor, value) and a JSON
summary (recovered fractions, monosemantic latents, naming accuracy).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clipsae.commands import add_device_argument
from clipsae.steps.ground_truth import run_ground_truth


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sae", type=Path, required=True, help="SAE checkpoint directory")
    parser.add_argument("--train", type=Path, required=True, help="train split shard directory")
    parser.add_argument("--test", type=Path, required=True, help="test split shard directory")
    parser.add_argument(
        "--index", type=Path, required=True, help="prepared dataset directory (index.parquet)"
    )
    parser.add_argument("--layer", default="final", help="the SAE's layer (final or blockN)")
    parser.add_argument("--names", type=Path, help="the SAE's vocab.csv: adds naming accuracy")
    parser.add_argument(
        "--vocab-embeddings", type=Path, help="embedded vocabulary .npy: names the baselines too"
    )
    parser.add_argument(
        "--factor", action="append", help="attribute column to check (repeatable; default: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random directions")
    parser.add_argument("--out", type=Path, required=True, help="output .parquet (+ .json)")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    summary = run_ground_truth(
        sae_dir=args.sae,
        train_acts=args.train,
        test_acts=args.test,
        index_dir=args.index,
        out_parquet=args.out,
        out_json=args.out.with_suffix(".json"),
        layer=args.layer,
        names_csv=args.names,
        vocab_npy=args.vocab_embeddings,
        factors=args.factor,
        seed=args.seed,
        device=args.device,
    )
    print(json.dumps(summary["methods"], indent=2))
    return 0
