"""Snakemake adapter: rule collages."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.collages import collages

with job_log(snakemake.log[0]):
    collages(
        features_dir=Path(snakemake.input.stats).parent,
        acts_dir=Path(snakemake.input.acts),
        dataset_name=snakemake.wildcards.dataset,
        dataset_entry=snakemake.params.dataset,
        index_dir=Path(snakemake.input.index).parent,
        out_dir=Path(snakemake.output[0]),
        n_latents=snakemake.params.n_latents,
        tile=snakemake.params.tile,
        latents=snakemake.params.latents,
    )
