"""Snakemake adapter: rule collages."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.collages import collages

with job_log(snakemake.log[0]):
    collages(
        Path(snakemake.input.stats).parent,
        Path(snakemake.input.acts),
        snakemake.wildcards.dataset,
        snakemake.params.dataset,
        Path(snakemake.input.index).parent,
        Path(snakemake.output[0]),
        snakemake.params.n_latents,
        snakemake.params.tile,
        latents=snakemake.params.latents,
    )
