"""Snakemake adapter: rule prepare_dataset."""

from pathlib import Path

from clipsae import steps
from clipsae.logs import job_log

with job_log(snakemake.log[0]):
    steps.prepare(
        snakemake.wildcards.dataset, snakemake.params.entry, Path(snakemake.output.index).parent
    )
