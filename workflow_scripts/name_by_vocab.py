"""Snakemake adapter: rule name_by_vocab."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.naming import name_by_vocab

with job_log(snakemake.log[0]):
    name_by_vocab(
        Path(snakemake.input.sae[0]).parent,
        Path(snakemake.input.vocab),
        snakemake.wildcards.layer,
        snakemake.params.model,
        snakemake.input.weights or None,
        Path(snakemake.output[0]),
        snakemake.params.top_n,
        snakemake.params.center,
    )
