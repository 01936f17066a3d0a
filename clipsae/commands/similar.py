"""The images of a split nearest to an image by SAE code (cosine of the codes).

``clipsae similar IMAGE --model tiny --dataset shapes --sae topk8-x8`` encodes IMAGE (a file or
a dataset image id) as ``explain`` does and compares its codes with those of every stored
activation of ``--split``, encoded in batches.
"""

from __future__ import annotations

import argparse

from clipsae.activations.extract import image_activations
from clipsae.activations.shards import ActivationStore, batches_of
from clipsae.commands._explore import add_run_arguments, open_sae, print_table, run_of, with_images
from clipsae.explore.run import query_image
from clipsae.explore.similar import nearest_by_code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="an image file or a dataset image id")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    run_ = run_of(args)
    image = query_image(args.image, run_, args.config)
    activation = image_activations(run_.open_clip(args.device, args.split), args.layer, [image])
    store = ActivationStore(run_.activations(args.split))
    sae = open_sae(run_, args.device)
    found = nearest_by_code(sae, activation[0], batches_of(store), top_n=args.top_n)
    print_table(with_images(found, run_, args.split), ["id", "cosine", "source"])
    return 0
