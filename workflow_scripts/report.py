"""Snakemake adapter: rule report."""

from pathlib import Path

from clipsae.report.document import Extraction, ReportInputs, write_report
from clipsae.report.runs import bind_runs
from clipsae.report.sections import SECTIONS
from clipsae.report.table import SpliceFile
from clipsae.runtime.logs import job_log

PER_RUN = ("stats", "collages", "names", "vlm", "vlm_names", "interpretations",
           "interpretations_summary", "explore_clusters", "explore_clusters_image",
           "explore_examples", "explore_examples_image")  # fmt: skip

with job_log(snakemake.log[0]):
    inputs = ReportInputs(
        table=Path(snakemake.input.table),
        runs=bind_runs(
            snakemake.params.runs,
            {role: snakemake.input[role] for role in PER_RUN},
        ),
        truth=bind_runs(snakemake.params.truth_runs, {"ground_truth": snakemake.input.truth}),
        steering=bind_runs(snakemake.params.steering_runs, {"steering": snakemake.input.steering}),
        extractions=[
            Extraction(**key, directory=Path(path))
            for key, path in zip(snakemake.params.extractions, snakemake.input.acts, strict=True)
        ],
        builds=dict(zip(snakemake.params.models, map(Path, snakemake.input.models), strict=True)),
        out_md=Path(snakemake.output.report),
        figures_dir=Path(snakemake.output.figure).parent,
        published=snakemake.params.published,
        extras=bind_runs(snakemake.params.evaluations, {"extras": snakemake.input.extras}),
        splice=[
            SpliceFile(**pair, path=Path(path))
            for pair, path in zip(snakemake.params.splice, snakemake.input.splice, strict=True)
        ],
        alignments=bind_runs(
            snakemake.params.alignments, {"alignment": snakemake.input.alignments}
        ),
    )
    write_report(inputs, SECTIONS)
