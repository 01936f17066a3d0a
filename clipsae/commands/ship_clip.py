"""Make a build of the embedded CLIP the package's shipped weights (``pretrained: shipped``).

``clipsae ship-clip --built results/models/tiny`` writes ``<arch>.safetensors`` (fp16) and
``<arch>.json`` into ``clipsae/models/shipped/``: the build's ``build.json``, the checksums, the
rebuild command and the fp16 weights' held-out zero-shot. Commit both files;
``tests/test_shipped_weights.py`` checks them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clipsae.models.weights import SHIPPED_DIR
from clipsae.steps.build import ship_model

REBUILD = (
    "snakemake --cores all --configfile config/experiments/embedded_clip.yaml "
    "results/models/tiny/build.json"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--built", type=Path, required=True, help="a build's folder (weights and build.json)"
    )
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR, help="where shipped weights go")
    parser.add_argument(
        "--rebuild", default=REBUILD, help="the command that made --built, kept in the record"
    )


def run(args: argparse.Namespace) -> int:
    record = ship_model(built_dir=args.built, rebuild=args.rebuild, out_dir=args.out)
    print(f"shipped {record['arch']}: held-out zero-shot {record['shipped']['heldout_zeroshot']}")
    return 0
