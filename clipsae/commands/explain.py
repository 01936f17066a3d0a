"""An image's most active SAE latents, with their activation and their EN/RU names.

``clipsae explain IMAGE --model tiny --dataset shapes --sae topk8-x8`` reads IMAGE (a file, or
the id of an image of the dataset, such as ``test-000012``) through the run's CLIP and layer
exactly as extraction does, encodes it with the run's SAE and prints its top latents.
"""

from __future__ import annotations

import argparse

from clipsae.activations.extract import image_activations
from clipsae.commands._explore import add_run_arguments, names_of, open_sae, print_table, run_of
from clipsae.explore.latents import explain
from clipsae.explore.run import query_image


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="an image file or a dataset image id")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    run_ = run_of(args)
    image = query_image(args.image, run_, args.config)
    activation = image_activations(run_.open_clip(args.device, args.split), args.layer, [image])
    table = explain(
        open_sae(run_, args.device), activation[0], top_n=args.top_n, names=names_of(args, run_)
    )
    print_table(table)
    return 0
