"""The SAE latents nearest to a text, with their names and top images.

``clipsae search "a red circle" --model tiny --dataset shapes --sae topk8-x8`` embeds the text
with the run's CLIP text tower and ranks the live latents by the cosine of their decoder
directions, carried into the joint space (``clipsae.steps.naming.concept_directions``), to it.
"""

from __future__ import annotations

import argparse

import polars as pl

from clipsae.commands._explore import (
    add_run_arguments,
    names_of,
    print_table,
    run_of,
    with_images,
)
from clipsae.explore.latents import nearest_directions, top_rows, with_names
from clipsae.interpret.features import STATS_FILE, TOP_FILE
from clipsae.models.text import encode_texts
from clipsae.steps.naming import concept_directions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", metavar="TEXT", help="what to look for, e.g. 'a red circle'")
    add_run_arguments(parser)
    parser.add_argument("--images", type=int, default=3, help="top images per latent")


def run(args: argparse.Namespace) -> int:
    run_ = run_of(args)
    entry, weights = run_.model_entry(args.split)
    query = encode_texts(run_.open_clip(args.device, args.split), [args.text])[0]
    directions = concept_directions(
        sae_dir=run_.sae_dir, layer=args.layer, model=entry, weights=weights
    )
    stats_path = run_.features_dir / STATS_FILE
    live = None
    if stats_path.is_file():
        live = (pl.read_parquet(stats_path)["fire_count"] > 0).to_numpy()
    found = nearest_directions(query, directions, top_n=args.top_n, live=live)
    print_table(with_names(found, names_of(args, run_)))
    top_path = run_.features_dir / TOP_FILE
    if args.images and top_path.is_file():
        top = pl.read_parquet(top_path)
        images = pl.concat(
            [
                top_rows(top, latent, args.images).with_columns(latent=pl.lit(latent, pl.Int64))
                for latent in found["latent"]
            ]
        )
        print()
        # The features are computed on the test split, so the rows are test rows.
        print_table(with_images(images, run_, "test"), ["latent", "id", "activation", "source"])
    return 0
