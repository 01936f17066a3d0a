"""Name SAE latents by the nearest concepts of an embedded bilingual vocabulary (EN + RU).

Decoder directions of ``final``-layer SAEs live in CLIP's joint space and compare directly with
the text embeddings from ``clipsae embed-text --vocab``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clipsae.sae import load_sae
from clipsae.steps.naming import name_directions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sae", type=Path, required=True, help="SAE checkpoint directory")
    parser.add_argument("--vocab-embeddings", type=Path, required=True, help="vocab .npy")
    parser.add_argument("--top-n", type=int, default=3)
    parser.add_argument("--no-center", action="store_true", help="compare raw text embeddings")
    parser.add_argument("--out", type=Path, required=True, help="output CSV")


def run(args: argparse.Namespace) -> int:
    directions = load_sae(args.sae).W_dec.detach().numpy()
    name_directions(
        directions,
        vocab_npy=args.vocab_embeddings,
        out_csv=args.out,
        top_n=args.top_n,
        center=not args.no_center,
    )
    return 0
