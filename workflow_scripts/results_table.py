"""Snakemake adapter: rule results_table."""

from pathlib import Path

from clipsae.report.runs import bind_runs
from clipsae.report.table import results_table
from clipsae.runtime.logs import job_log

with job_log(snakemake.log[0]):
    results_table(
        runs=bind_runs(
            snakemake.params.runs,
            {role: snakemake.input[role] for role in ("recon", "zeroshot", "cfg")},
        ),
        out_parquet=Path(snakemake.output.parquet),
        out_md=Path(snakemake.output.markdown),
    )
