"""The images of a split nearest to an image by SAE code (cosine of the codes).

``clipsae similar IMAGE --model tiny --dataset shapes --sae topk8-x8`` encodes IMAGE (a file or
a dataset image id) as ``explain`` does and compares its codes with those of every stored
activation of ``--split``, encoded in batches.
"""

from __future__ import annotations

import argparse

from clipsae.activations.shards import ActivationStore, batches_of
from clipsae.commands._explore import add_image_run_arguments, image_query, print_table, with_images
from clipsae.explore.similar import nearest_by_code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    query = image_query(args)
    store = ActivationStore(query.run.activations(args.split))
    found = nearest_by_code(query.sae, query.activation, batches_of(store), top_n=args.top_n)
    print_table(with_images(found, query.run, args.split), ["id", "cosine", "source"])
    return 0
