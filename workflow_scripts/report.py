"""Snakemake adapter: rule report."""

from pathlib import Path

from clipsae.report.markdown import write_report
from clipsae.runtime.logs import job_log

with job_log(snakemake.log[0]):
    write_report(
        Path(snakemake.params.results), snakemake.params.runs, Path(snakemake.output.report)
    )
