"""The ``clipsae`` command: one subcommand per pipeline step, usable without Snakemake.

Subcommands are discovered from ``clipsae/commands``: a module ``train_sae.py`` becomes
``clipsae train-sae``; its docstring's first line is the help text, and it exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules whose name starts with ``_`` are
helpers shared by several subcommands.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from clipsae import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipsae", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        cmd = sub.add_parser(info.name.replace("_", "-"), help=summary, description=module.__doc__)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
