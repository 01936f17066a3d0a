"""Snakemake adapter: rule prepare_dataset."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.prepare import prepare

with job_log(snakemake.log[0]):
    prepare(
        name=snakemake.wildcards.dataset,
        entry=snakemake.params.entry,
        out_dir=Path(snakemake.output.index).parent,
    )
