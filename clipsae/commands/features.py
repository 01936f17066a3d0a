"""Per-latent statistics, top- and weakly-activating rows of every latent, in one streaming pass."""

from __future__ import annotations

import argparse
from pathlib import Path

from clipsae.commands import add_device_argument
from clipsae.config.validate import schema_defaults
from clipsae.interpret.features import WeakSampling
from clipsae.steps.features import encode_features


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = schema_defaults("features")  # the workflow's defaults, from the one place
    parser.add_argument("--sae", type=Path, required=True, help="SAE checkpoint directory")
    parser.add_argument("--activations", type=Path, required=True, help="shard directory")
    parser.add_argument("--top-k", type=int, default=defaults["top_k"], help="rows kept per latent")
    parser.add_argument(
        "--n-weak",
        type=int,
        default=defaults["n_weak"],
        help="weakly activating rows kept per latent (0: none)",
    )
    parser.add_argument(
        "--weak-quantile",
        type=float,
        default=defaults["weak_quantile"],
        help="weak rows are drawn from at or below this quantile of a latent's activations",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    weak = WeakSampling.from_settings(n_weak=args.n_weak, weak_quantile=args.weak_quantile)
    encode_features(
        sae_dir=args.sae,
        acts_dir=args.activations,
        out_dir=args.out,
        top_k=args.top_k,
        device=args.device,
        weak=weak,
    )
    return 0
