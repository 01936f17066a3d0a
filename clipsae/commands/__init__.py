"""Subcommands of the ``clipsae`` command line (see ``clipsae.cli``)."""
