"""What the explore commands (``explain``, ``search``, ``similar``, ``clusters``) share: the
arguments that name a run under ``results/``, the query image's activation and plain-text tables.

The leading underscore keeps ``clipsae.cli`` from taking this module for a subcommand.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from clipsae.activations.extract import image_activations
from clipsae.activations.row_index import read_row_ids
from clipsae.commands import add_device_argument
from clipsae.explore.run import Run, query_image, read_names, records_by_id
from clipsae.runtime.device import pick_device
from clipsae.sae import SAE, load_sae

log = logging.getLogger(__name__)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--results --model --layer --dataset --sae`` (the workflow's wildcards) and friends."""
    run = parser.add_argument_group("the run, as the workflow laid it out")
    run.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    run.add_argument("--model", required=True, help="a models entry, e.g. tiny")
    run.add_argument("--layer", default="final", help="final or block<N> (default final)")
    run.add_argument("--dataset", required=True, help="a datasets entry, e.g. shapes")
    run.add_argument("--sae", required=True, help="a saes entry, e.g. topk8-x8")
    run.add_argument("--split", default="test", help="activations searched (default test)")
    run.add_argument("--names", type=Path, help="names CSV (default: the run's own)")
    run.add_argument(
        "--config",
        type=Path,
        default=Path("config/config.yaml"),
        help="workflow config, read only to open a dataset image by its id",
    )
    parser.add_argument("--top-n", type=int, default=10, help="rows to show (default 10)")
    add_device_argument(parser)


def add_image_run_arguments(parser: argparse.ArgumentParser) -> None:
    """An ``IMAGE`` positional before the run arguments, for the commands that query by image."""
    parser.add_argument("image", metavar="IMAGE", help="an image file or a dataset image id")
    add_run_arguments(parser)


def image_activation(args: argparse.Namespace, run: Run) -> np.ndarray:
    """The ``IMAGE`` argument's activation at ``--layer``, through the run's CLIP exactly as
    extraction computes it, so its codes compare with the stored ones."""
    image = query_image(args.image, run, args.config)
    activation = image_activations(run.open_clip(args.device, args.split), args.layer, [image])
    return activation[0]


def run_of(args: argparse.Namespace) -> Run:
    return Run(args.results, args.model, args.layer, args.dataset, args.sae)


def open_sae(run: Run, device: str) -> SAE:
    return load_sae(run.sae_dir, pick_device(device)).eval()


@dataclass(frozen=True)
class ImageQuery:
    """What a command that queries by image starts from: the run, its SAE on ``--device`` and the
    ``IMAGE`` argument's activation."""

    run: Run
    sae: SAE
    activation: np.ndarray


def image_query(args: argparse.Namespace) -> ImageQuery:
    """The query that the arguments of ``add_image_run_arguments`` name."""
    run = run_of(args)
    return ImageQuery(run, open_sae(run, args.device), image_activation(args, run))


def names_of(args: argparse.Namespace, run: Run) -> pl.DataFrame | None:
    """The ``--names`` CSV, or the run's ``interpretations.csv`` / ``vocab.csv``, if any."""
    path = args.names or run.names_file()
    if path is None:
        log.warning("no names for %s: neither --names nor a names CSV in the run", run.sae_dir)
        return None
    return read_names(path)


def with_images(frame: pl.DataFrame, run: Run, split: str) -> pl.DataFrame:
    """``frame`` with a ``row`` column (activation rows of ``split``) plus each image's ``id``
    and ``source`` (a file path for folders, a descriptor for generated images)."""
    ids = read_row_ids(run.activations(split))
    records = records_by_id(run)
    image_ids = [ids[row] for row in frame["row"]]
    return frame.with_columns(
        id=pl.Series(image_ids, dtype=pl.String),
        source=pl.Series([records[i].source for i in image_ids], dtype=pl.String),
    )


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return "" if value is None else str(value)


def print_table(frame: pl.DataFrame, columns: Sequence[str] | None = None) -> None:
    """Left-aligned columns, every row shown (polars' own repr truncates long tables)."""
    columns = list(columns or frame.columns)
    cells = [[_cell(v) for v in row] for row in frame.select(columns).iter_rows()]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    for row in [columns, *cells]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
