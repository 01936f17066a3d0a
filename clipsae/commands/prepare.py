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
import yaml

from clipsae.config.validate import dataset_source_spec
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
    # Only this dataset's entry is read: the workflow validates the whole file once at startup, and
    # an unrelated mistake (a model tag) should not stop a dataset from being prepared by hand.
    config = yaml.safe_load(Path(args.config).read_text())
    datasets = config.get("datasets", {}) if isinstance(config, dict) else {}
    if args.dataset not in datasets:
        raise ValueError(
            f"{args.config}: no dataset {args.dataset!r} under 'datasets' "
            f"(available: {sorted(datasets)})"
        )
    return dataset_source_spec(datasets[args.dataset])


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
