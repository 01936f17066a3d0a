"""Snakemake adapter: rule eval_reconstruction."""

from pathlib import Path

from clipsae import steps
from clipsae.logs import job_log

with job_log(snakemake.log[0]):
    steps.eval_reconstruction(
        Path(snakemake.input.sae[0]).parent,
        Path(snakemake.input.acts),
        Path(snakemake.output[0]),
        snakemake.params.device,
    )
