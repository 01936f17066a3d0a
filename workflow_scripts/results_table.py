"""Snakemake adapter: rule results_table."""

from pathlib import Path

from clipsae.report.markdown import results_table
from clipsae.runtime.logs import job_log

with job_log(snakemake.log[0]):
    results_table(
        Path(snakemake.params.results),
        snakemake.params.runs,
        Path(snakemake.output.parquet),
        Path(snakemake.output.markdown),
    )
