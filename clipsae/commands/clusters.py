"""k-means clusters of the SAE codes of a split: sizes, top latents, a few images, collages.

``clipsae clusters --model tiny --dataset shapes --sae topk8-x8 --n-clusters 8 --out DIR``
prints one line per cluster and, with ``--out``, writes ``DIR/cluster_NNN.jpg`` (the dataset's
images are opened through ``--config``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from clipsae.activations.row_index import read_row_ids
from clipsae.activations.shards import ActivationStore
from clipsae.commands._explore import add_run_arguments, names_of, open_sae, print_table, run_of
from clipsae.config.validate import dataset_entry_from_file
from clipsae.data import build_dataset
from clipsae.explore.clusters import cluster_codes, write_cluster_collages
from clipsae.explore.run import records_by_id, split_codes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--n-clusters", type=int, default=8)
    parser.add_argument("--members", type=int, default=6, help="images shown per cluster")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tile", type=int, default=96, help="collage tile size in pixels")
    parser.add_argument("--out", type=Path, help="folder for one collage per cluster")


def run(args: argparse.Namespace) -> int:
    run_ = run_of(args)
    acts = run_.activations(args.split)
    codes = split_codes(open_sae(run_, args.device), ActivationStore(acts))
    clusters = cluster_codes(
        codes, n_clusters=args.n_clusters, n_members=args.members, seed=args.seed
    )
    ids = read_row_ids(acts)
    table = clusters.table.with_columns(
        members=pl.Series([[ids[row] for row in rows] for rows in clusters.table["members"]])
    )
    names = names_of(args, run_)
    if names is not None:
        label = dict(zip(names["latent"], names["label_en"], strict=True))
        table = table.with_columns(
            names=pl.Series([[label.get(lat, "") for lat in row] for row in table["top_latents"]])
        )
    print_table(table.drop("member_cosine", "top_values"))
    if args.out is not None:
        dataset = build_dataset(run_.dataset, dataset_entry_from_file(args.config, run_.dataset))
        records = records_by_id(run_)
        paths = write_cluster_collages(
            clusters, lambda row: dataset.open_image(records[ids[row]]), args.out, tile=args.tile
        )
        print(f"\n{len(paths)} collages in {args.out}")
    return 0
