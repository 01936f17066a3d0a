"""Reconstruction metrics of an SAE on activations, and zero-shot accuracy with and without it.

Zero-shot from stored activations works for ``final`` (embedding) activations; inner layers need
the images and the model (the workflow's eval_zeroshot rule splices the SAE into the forward).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from clipsae.evaluate.zeroshot import zeroshot_on_embeddings
from clipsae.runtime.device import pick_device
from clipsae.sae import load_sae
from clipsae.steps.reconstruction import eval_reconstruction
from clipsae.steps.zeroshot import labelled_batches


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sae", type=Path, required=True, help="SAE checkpoint directory")
    parser.add_argument("--activations", type=Path, required=True, help="shard directory")
    parser.add_argument("--classes", type=Path, help="class embeddings .npy: adds zero-shot")
    parser.add_argument("--out", type=Path, required=True, help="output JSON")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")


def run(args: argparse.Namespace) -> int:
    eval_reconstruction(args.sae, args.activations, args.out, args.device)
    if args.classes is None:
        return 0
    device = pick_device(args.device)
    sae = load_sae(args.sae, device).eval()
    batches = labelled_batches(args.activations)
    result = json.loads(args.out.read_text())
    result["zeroshot"] = zeroshot_on_embeddings(batches, np.load(args.classes), sae, device)
    args.out.write_text(json.dumps(result, indent=2))
    return 0
