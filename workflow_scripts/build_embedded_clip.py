"""Snakemake adapter: rule build_embedded_clip."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.build import build_model

with job_log(snakemake.log[0]):
    build_model(
        arch=snakemake.params.arch,
        build=snakemake.params.build,
        out_dir=Path(snakemake.output.weights).parent,
        device=snakemake.config["device"],
    )
