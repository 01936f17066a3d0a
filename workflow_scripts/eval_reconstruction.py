"""Snakemake adapter: rule eval_reconstruction."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.reconstruction import eval_reconstruction

with job_log(snakemake.log[0]):
    eval_reconstruction(
        sae_dir=Path(snakemake.input.sae[0]).parent,
        acts_dir=Path(snakemake.input.acts),
        out_json=Path(snakemake.output[0]),
        device=snakemake.config["device"],
    )
