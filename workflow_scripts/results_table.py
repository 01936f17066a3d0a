"""Snakemake adapter: rule results_table."""

from pathlib import Path

from clipsae.report.runs import bind_runs
from clipsae.report.table import SpliceFile, results_table
from clipsae.runtime.logs import job_log

with job_log(snakemake.log[0]):
    results_table(
        runs=bind_runs(
            snakemake.params.runs,
            {role: snakemake.input[role] for role in ("recon", "zeroshot", "cfg", "extras")},
        ),
        splice=[
            SpliceFile(**pair, path=Path(path))
            for pair, path in zip(snakemake.params.splice, snakemake.input.splice, strict=True)
        ],
        out_parquet=Path(snakemake.output.parquet),
        out_md=Path(snakemake.output.markdown),
    )
