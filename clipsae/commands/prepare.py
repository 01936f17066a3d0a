"""Write a dataset's index.parquet and classes.json (the prepare_dataset step).

The dataset comes either from a workflow config (``--config config.yaml --dataset NAME``) or from
an inline source spec (``--dataset NAME --spec-json '{"source": "synthetic", ...}'``), so the step
runs the same inside and outside Snakemake.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from clipsae.config.validate import dataset_entry_from_file
from clipsae.steps.prepare import prepare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (a key of config.datasets)")
    spec = parser.add_mutually_exclusive_group(required=True)
    spec.add_argument("--config", type=Path, help="workflow config file holding the dataset")
    spec.add_argument("--spec-json", help="the dataset's source spec as a JSON object")
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def dataset_entry(args: argparse.Namespace) -> dict[str, Any]:
    """The dataset entry named by the command line, with a message naming what is wrong."""
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
    prepare(name=args.dataset, entry=dataset_entry(args), out_dir=args.out)
    return 0
