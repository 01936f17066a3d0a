"""One module per pipeline step (a Snakemake rule), taking paths and config entries.

The Snakemake scripts and the ``clipsae`` subcommands both call these, so a step behaves the
same inside and outside the workflow; a rule's code fingerprint is the import closure of its
step module.
"""
