"""Snakemake adapter: rule report."""

from pathlib import Path

from clipsae.logs import job_log
from clipsae.report import write_report

with job_log(snakemake.log[0]):
    write_report(
        Path(snakemake.params.results), snakemake.params.runs, Path(snakemake.output.report)
    )
