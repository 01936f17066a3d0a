"""Train the embedded tiny CLIP on generated captions (the build_embedded_clip step)."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from clipsae.commands import add_device_argument
from clipsae.models.build_config import LOSSES
from clipsae.models.embedded import BuildConfig
from clipsae.steps.build import build_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="clipsae-tiny-vit", help="open_clip architecture")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    defaults = BuildConfig()
    for key in ("n_images", "steps", "batch_size", "lr", "seed"):
        value = getattr(defaults, key)
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument(
        "--colors", nargs="+", default=list(defaults.colors), help="palette colours in the captions"
    )
    parser.add_argument(
        "--captions",
        nargs="+",
        default=list(defaults.captions),
        help="caption templates over {caption}, {color}, {shape}, {background}",
    )
    parser.add_argument(
        "--loss", choices=LOSSES, default=defaults.loss, help="contrastive loss of the build"
    )
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    build = {f.name: getattr(args, f.name) for f in fields(BuildConfig)}
    build_model(arch=args.arch, build=build, out_dir=args.out, device=args.device)
    return 0
