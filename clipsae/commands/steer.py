"""Amplify or ablate SAE latents and measure what changes: zero-shot predictions and retrieval.

Each latent is set to 0 (ablation) and to multiples of its 99th-percentile activation, with the
SAE's reconstruction error kept, then the embedding is classified against class text embeddings.
Reports per latent the flip rate to its target class, the share removed from it by ablation,
how often a second class set's prediction changed, and the target share among the nearest
images before and after. Latents come from ``--latent LATENT=CLASS`` or from a ground-truth
table (``clipsae ground-truth``) with ``--factor``. For a ``block{N}`` SAE, ``--config``,
``--model`` and ``--dataset`` let the edit run through the rest of the vision tower.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clipsae.commands import add_device_argument
from clipsae.config.validate import load_config
from clipsae.interpret.steering import DEFAULT_MULTIPLIERS
from clipsae.steps.steering import (
    SplicedSource,
    class_names_of,
    detector_targets,
    run_steering,
)


def _target(text: str) -> tuple[int, str]:
    latent, sep, value = text.partition("=")
    if not sep or not latent.isdigit() or not value:
        raise argparse.ArgumentTypeError(f"expected LATENT=CLASS (e.g. 17=red), got {text!r}")
    return int(latent), value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sae", type=Path, required=True, help="SAE checkpoint directory")
    parser.add_argument(
        "--activations", type=Path, required=True, help="shard directory of the steered split"
    )
    parser.add_argument("--classes", type=Path, required=True, help="class embeddings .npy")
    parser.add_argument(
        "--other-classes", type=Path, help="a second factor's class embeddings .npy"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--latent", type=_target, action="append", help="LATENT=CLASS (repeatable)")
    which.add_argument("--ground-truth", type=Path, help="table from clipsae ground-truth")
    parser.add_argument("--factor", help="the classes' factor (with --ground-truth, retrieval)")
    parser.add_argument("--index", type=Path, help="prepared dataset directory: adds retrieval")
    parser.add_argument(
        "--multiplier",
        type=float,
        action="append",
        help=f"x the peak activation (repeatable; default {list(DEFAULT_MULTIPLIERS)})",
    )
    parser.add_argument("--percentile", type=float, default=99.0, help="peak activation")
    parser.add_argument("--config", type=Path, help="workflow config (block layers only)")
    parser.add_argument("--model", help="its models entry (block layers only)")
    parser.add_argument("--weights", type=Path, help="built weights of a pretrained: build model")
    parser.add_argument("--dataset", help="its datasets entry (block layers only)")
    parser.add_argument("--out", type=Path, required=True, help="output .parquet (+ .json)")
    add_device_argument(parser)


def _spliced(args: argparse.Namespace) -> SplicedSource | None:
    given = [args.config, args.model, args.dataset]
    if not any(given):
        return None
    if not all(given):
        raise SystemExit("--config, --model and --dataset go together (block layers)")
    config = load_config(args.config)
    for key, name in (("models", args.model), ("datasets", args.dataset)):
        if name not in config[key]:
            raise SystemExit(f"{args.config}: {key}.{name} does not exist ({sorted(config[key])})")
    return SplicedSource(
        config["models"][args.model],
        args.weights,
        args.dataset,
        config["datasets"][args.dataset],
    )


def run(args: argparse.Namespace) -> int:
    if args.ground_truth is not None:
        if args.factor is None:
            raise SystemExit("--ground-truth needs --factor (e.g. --factor color)")
        targets = detector_targets(args.ground_truth, args.factor, class_names_of(args.classes))
    else:
        targets = args.latent
    summary = run_steering(
        sae_dir=args.sae,
        acts_dir=args.activations,
        classes_npy=args.classes,
        out_parquet=args.out,
        out_json=args.out.with_suffix(".json"),
        targets=targets,
        factor=args.factor,
        other_classes_npy=args.other_classes,
        index_dir=args.index,
        multipliers=args.multiplier or DEFAULT_MULTIPLIERS,
        percentile=args.percentile,
        spliced=_spliced(args),
        device=args.device,
    )
    print(json.dumps(summary, indent=2))
    return 0
