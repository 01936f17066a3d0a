"""Reconstruction metrics of an SAE on activations, and zero-shot accuracy with and without it.

Zero-shot from stored activations works for ``final`` (embedding) activations; inner layers need
the images and the model (the workflow's eval_zeroshot rule splices the SAE into the forward).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from clipsae.commands import add_device_argument
from clipsae.evaluate.zeroshot import zeroshot_on_embeddings
from clipsae.runtime.atomic import atomic_write_json
from clipsae.runtime.device import pick_device
from clipsae.sae import load_sae
from clipsae.steps.reconstruction import eval_reconstruction
from clipsae.steps.zeroshot import labelled_batches


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sae", type=Path, required=True, help="SAE checkpoint directory")
    parser.add_argument("--activations", type=Path, required=True, help="shard directory")
    parser.add_argument("--classes", type=Path, help="class embeddings .npy: adds zero-shot")
    parser.add_argument("--out", type=Path, required=True, help="output JSON")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    result = eval_reconstruction(
        sae_dir=args.sae, acts_dir=args.activations, out_json=args.out, device=device
    )
    if args.classes is None:
        return 0
    sae = load_sae(args.sae, device).eval()
    batches = labelled_batches(args.activations)
    result["zeroshot"] = zeroshot_on_embeddings(batches, np.load(args.classes), sae, device)
    atomic_write_json(result, args.out)
    return 0
