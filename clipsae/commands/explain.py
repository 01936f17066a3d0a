"""An image's most active SAE latents, with their activation and their EN/RU names.

``clipsae explain IMAGE --model tiny --dataset shapes --sae topk8-x8`` reads IMAGE (a file, or
the id of an image of the dataset, such as ``test-000012``) through the run's CLIP and layer
exactly as extraction does, encodes it with the run's SAE and prints its top latents.
"""

from __future__ import annotations

import argparse

from clipsae.commands._explore import add_image_run_arguments, image_query, names_of, print_table
from clipsae.explore.latents import explain


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    query = image_query(args)
    table = explain(query.sae, query.activation, top_n=args.top_n, names=names_of(args, query.run))
    print_table(table)
    return 0
