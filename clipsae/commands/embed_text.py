"""Embed zero-shot class prompts or a bilingual concept vocabulary with a CLIP text tower."""

from __future__ import annotations

import argparse
from pathlib import Path

from clipsae.commands import add_device_argument, add_seed_argument
from clipsae.config.prompts import load_prompts
from clipsae.steps.text import embed_classes, embed_vocab


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="open_clip architecture")
    parser.add_argument("--pretrained", default="none", help="tag, checkpoint path, or none")
    add_seed_argument(parser)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--classes", type=Path, help="classes.json of a prepared dataset")
    what.add_argument("--vocab", type=Path, help="bilingual TSV with columns en, ru")
    prompts = parser.add_mutually_exclusive_group()
    prompts.add_argument(
        "--template", action="append", help="prompt template with {} (repeatable; classes only)"
    )
    prompts.add_argument(
        "--prompts",
        help="a published ensemble of templates and class names: a config/zeroshot name "
        "(cifar10, imagenet, ...) or a path (classes only)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output .npy (+ .parquet)")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    model = {"arch": args.model, "pretrained": args.pretrained, "seed": args.seed}
    if args.classes is not None:
        given = args.prompts or args.template
        embed_classes(
            model=model,
            weights=None,
            classes_json=args.classes,
            prompts=load_prompts(given, Path(".")).to_params() if given else None,
            out_npy=args.out,
            device=args.device,
        )
    else:
        embed_vocab(
            model=model, weights=None, vocab_tsv=args.vocab, out_npy=args.out, device=args.device
        )
    return 0
