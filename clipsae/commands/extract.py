"""Embed a folder of images with an open_clip model into activation shards (the extract step).

``clipsae extract --images DIR --model ViT-B-32 --pretrained openai --layer final --out OUT``
writes OUT/shard-*.npy, OUT/index.parquet (row, id, label) and OUT/meta.json. DIR may hold class
sub-folders (labels follow them) or just images (every label is 0). ``--pretrained`` is an
open_clip tag, a local checkpoint file, or ``none`` for random weights drawn from ``--seed``
(the same weights in every run). It calls the workflow's extract step.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from PIL import Image

from clipsae.commands import add_device_argument, add_seed_argument
from clipsae.data import ImageDataset, Record, build_dataset
from clipsae.data.imagefolder import IMAGE_SUFFIXES
from clipsae.steps.extract import extract

log = logging.getLogger(__name__)


class _ImageFiles(ImageDataset):
    """Every image file under a folder without class sub-folders, as one unlabeled set."""

    def __init__(self, root: Path) -> None:
        super().__init__(root.name, ["image"])
        self.root = root
        self.paths = sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.paths:
            raise ValueError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def records(self) -> list[Record]:
        return [Record(str(p.relative_to(self.root)), "train", 0, str(p), {}) for p in self.paths]

    def open_image(self, record: Record) -> Image.Image:
        return self.decode(record.source)


def open_folder(root: Path) -> ImageDataset:
    if not root.is_dir():
        raise ValueError(f"--images {root} is not a directory")
    if any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        return build_dataset(
            root.name, {"source": "imagefolder", "root": str(root), "test_fraction": 0.0}
        )
    return _ImageFiles(root)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, required=True, help="folder of images")
    parser.add_argument("--model", required=True, help="open_clip architecture, e.g. ViT-B-32")
    parser.add_argument(
        "--pretrained",
        default="none",
        help="tag, checkpoint path, none, or shipped (the package's own weights for its own "
        "architectures)",
    )
    add_seed_argument(parser)
    parser.add_argument("--layer", default="final", help="final or block<N> (0-based)")
    parser.add_argument("--out", type=Path, required=True, help="output shard directory")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    parser.add_argument("--shard-rows", type=int, default=65536)
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    dataset = open_folder(args.images)
    meta = extract(
        model={
            "arch": args.model,
            "pretrained": args.pretrained,
            "seed": args.seed,
            "batch_size": args.batch_size,
        },
        weights=None,
        dataset=dataset,
        records=dataset.records(),
        layer=args.layer,
        out_dir=args.out,
        extraction={
            "dtype": args.dtype,
            "shard_rows": args.shard_rows,
            "num_workers": args.num_workers,
        },
        extra={"images": str(args.images)},
        device=args.device,
    )
    log.info("%d images -> %s (%d x %d)", meta.n_rows, args.out, meta.n_rows, meta.d)
    return 0
