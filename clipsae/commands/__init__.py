"""Subcommands of the ``clipsae`` command line (see ``clipsae.cli``)."""

from __future__ import annotations

import argparse

from clipsae.models.architectures import DEFAULT_SEED


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``, resolved by ``clipsae.runtime.device.pick_device`` like the config key."""
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N; cuda without CUDA is "
        "an error",
    )


def add_seed_argument(parser: argparse.ArgumentParser) -> None:
    """``--seed`` of random weights, the ``seed`` of a config's model entry."""
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed of the random weights of --pretrained none",
    )
