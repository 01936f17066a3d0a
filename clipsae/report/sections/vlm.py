"""What VLM naming did per run: names paid for and cached, what was left unnamed, and why."""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import read_json


def section(inputs: ReportInputs) -> list[str]:
    lines = [
        "## VLM naming",
        "",
        "| run | model | requests | cached | names | unnamed | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in inputs.runs:
        summary = read_json(run["vlm"])
        counts = summary["counts"]
        note = summary["skipped_reason"] or ", ".join(
            f"{status}: {n}" for status, n in sorted(counts.items()) if status != "ok"
        )
        lines.append(
            f"| {run.run.title} | {summary['model']} | {summary['requests']} | "
            f"{summary['cached']} | {counts.get('ok', 0)} | {len(summary['unnamed'])} | "
            f"{note or '-'} |"
        )
    return [*lines, ""]
