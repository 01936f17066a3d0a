"""Snakemake adapter: rule encode_features."""

from pathlib import Path

from clipsae import steps
from clipsae.logs import job_log

with job_log(snakemake.log[0]):
    steps.encode_features(
        Path(snakemake.input.sae[0]).parent,
        Path(snakemake.input.acts),
        Path(snakemake.output.stats).parent,
        snakemake.params.top_k,
        snakemake.params.device,
    )
