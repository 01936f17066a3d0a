"""The ``clipsae`` command: one subcommand per pipeline step, usable without Snakemake.

Subcommands are discovered from ``clipsae/commands``: a module ``train_sae.py`` becomes
``clipsae train-sae``; its docstring's first line is the help text, and it exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules whose name starts with ``_`` are
helpers shared by several subcommands.

Bad input (a missing file, a file that is not what it claims, an impossible setting) ends the
command with one line, ``clipsae <command>: error: <what and where>``, and exit status 1; ``-v``
adds the traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback

from clipsae import commands

# What a user's input can cause. The project's own errors (ConfigError, ShardError, BadImage,
# VocabError) are ValueErrors that name the file or key; OSError covers missing and unreadable
# files, and carries the file name.
USER_ERRORS = (ValueError, OSError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipsae", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, tracebacks on errors"
    )
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


def describe(exc: BaseException) -> str:
    """One line: an OSError as ``file: reason``, anything else as its message with the lines of
    a multi-line one (a config's list of problems) joined by ``;``."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head, *rest = lines
    return " ".join([head, "; ".join(rest)]) if rest else head


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except USER_ERRORS as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"clipsae {args.command}: error: {describe(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
