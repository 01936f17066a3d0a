"""Snakemake adapter: rule sae_alignment."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.alignment import align_saes

with job_log(snakemake.log[0]):
    align_saes(
        sae_a=Path(snakemake.input.sae[0]).parent,
        sae_b=Path(snakemake.input.partner[0]).parent,
        out_json=Path(snakemake.output[0]),
        names=(snakemake.wildcards.sae, snakemake.params.partner),
    )
