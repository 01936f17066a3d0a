"""Export a trained SAE as a folder that SAELens (>= 6) loads with SAE.load_from_disk.

Writes OUT/sae_weights.safetensors and cfg.json in SAELens' layout, with the input scaling folded
into the weights (SAELens' encode and decode take raw activations and give ours), a copy of
sparsity.safetensors, and a model card OUT/README.md (model, layer, training data, metrics, how
to load). Architectures map to the SAELens one that encodes the same way at inference (batchtopk
and matryoshka_prefix as jumprelu, matryoshka_k as topk). Reading the export needs
`pip install "clipsae[interop]"`; writing it does not.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from clipsae.sae.export import export_sae

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sae_dir", type=Path, metavar="DIR", help="a clipsae SAE checkpoint")
    parser.add_argument("out_dir", type=Path, metavar="OUT", help="folder to write the export to")


def run(args: argparse.Namespace) -> int:
    log.info("exported %s to %s", args.sae_dir, export_sae(args.sae_dir, args.out_dir))
    return 0
