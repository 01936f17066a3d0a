"""Snakemake adapter: rule collages."""

from pathlib import Path

from clipsae import steps
from clipsae.logs import job_log

with job_log(snakemake.log[0]):
    steps.collages(
        Path(snakemake.input.stats).parent,
        Path(snakemake.input.acts),
        snakemake.wildcards.dataset,
        snakemake.params.dataset,
        Path(snakemake.input.index).parent,
        Path(snakemake.output[0]),
        snakemake.params.n_latents,
        snakemake.params.tile,
    )
