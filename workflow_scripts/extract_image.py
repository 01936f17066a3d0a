"""Snakemake adapter: rule extract_image."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.extract import extract

w = snakemake.wildcards
with job_log(snakemake.log[0]):
    extract(
        snakemake.params.model,
        snakemake.input.weights or None,
        w.dataset,
        snakemake.params.dataset,
        Path(snakemake.input.index).parent,
        w.split,
        w.layer,
        Path(snakemake.output[0]),
        snakemake.params.extraction,
        snakemake.params.device,
    )
