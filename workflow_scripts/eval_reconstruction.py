"""Snakemake adapter: rule eval_reconstruction."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.reconstruction import eval_reconstruction

with job_log(snakemake.log[0]):
    eval_reconstruction(
        Path(snakemake.input.sae[0]).parent,
        Path(snakemake.input.acts),
        Path(snakemake.output[0]),
        snakemake.config["device"],
    )
