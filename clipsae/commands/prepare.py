"""Write a dataset's index.parquet and classes.json (the prepare_dataset step).

The dataset comes either from a workflow config (``--config config.yaml --dataset NAME``) or from
an inline source spec (``--dataset NAME --spec-json '{"source": "synthetic", ...}'``), so the step
runs the same inside and outside Snakemake.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from clipsae.config.validate import dataset_entry_from_file
from clipsae.data import build_dataset, write_index

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (a key of config.datasets)")
    spec = parser.add_mutually_exclusive_group(required=True)
    spec.add_argument("--config", type=Path, help="workflow config file holding the dataset")
    spec.add_argument("--spec-json", help="the dataset's source spec as a JSON object")
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def dataset_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The source spec named by the command line, with a message naming what is wrong."""
    if args.spec_json is not None:
        try:
            spec = json.loads(args.spec_json)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--spec-json is not valid JSON: {exc}") from exc
        if not isinstance(spec, dict):
            raise ValueError("--spec-json must be a JSON object")
        return spec
    return dataset_entry_from_file(Path(args.config), args.dataset)


def run(args: argparse.Namespace) -> int:
    ds = build_dataset(args.dataset, dataset_spec(args))
    path = write_index(ds, args.out)
    splits = Counter(pl.read_parquet(path, columns=["split"])["split"].to_list())
    log.info(
        "%s: %d images (%s), %d classes -> %s",
        args.dataset,
        splits.total(),
        ", ".join(f"{k} {v}" for k, v in sorted(splits.items())),
        len(ds.class_names),
        path,
    )
    return 0
