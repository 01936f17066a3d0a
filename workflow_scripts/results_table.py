"""Snakemake adapter: rule results_table."""

from pathlib import Path

from clipsae.logs import job_log
from clipsae.report import results_table

with job_log(snakemake.log[0]):
    results_table(
        Path(snakemake.params.results),
        snakemake.params.runs,
        Path(snakemake.output.parquet),
        Path(snakemake.output.markdown),
    )
