"""An image's most active SAE latents, with their activation and their EN/RU names.

``clipsae explain IMAGE --model tiny --dataset shapes --sae topk8-x8`` reads IMAGE (a file, or
the id of an image of the dataset, such as ``test-000012``) through the run's CLIP and layer
exactly as extraction does, encodes it with the run's SAE and prints its top latents.
"""

from __future__ import annotations

import argparse

from clipsae.commands._explore import (
    add_image_run_arguments,
    image_activation,
    names_of,
    open_sae,
    print_table,
    run_of,
)
from clipsae.explore.latents import explain


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    run_ = run_of(args)
    activation = image_activation(args, run_)
    table = explain(
        open_sae(run_, args.device), activation, top_n=args.top_n, names=names_of(args, run_)
    )
    print_table(table)
    return 0
