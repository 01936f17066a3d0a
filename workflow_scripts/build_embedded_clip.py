"""Snakemake adapter: rule build_embedded_clip."""

from pathlib import Path

from clipsae import steps
from clipsae.logs import job_log

with job_log(snakemake.log[0]):
    steps.build_model(
        snakemake.params.arch,
        snakemake.params.build,
        Path(snakemake.output.weights).parent,
        snakemake.params.device,
    )
