"""What VLM naming did per run: names paid for and cached, what was left unnamed, and why."""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines, read_json


def section(inputs: ReportInputs) -> list[str]:
    rows = []
    for run in inputs.runs:
        summary = read_json(run["vlm"])
        counts = summary["counts"]
        note = summary["skipped_reason"] or ", ".join(
            f"{status}: {n}" for status, n in sorted(counts.items()) if status != "ok"
        )
        rows.append(
            (run.run.title, summary["model"], summary["requests"], summary["cached"],
             counts.get("ok", 0), len(summary["unnamed"]), note or "-")
        )  # fmt: skip
    columns = ("run", "model", "requests", "cached", "names", "unnamed", "note")
    return ["## VLM naming", "", *markdown_lines(columns, rows), ""]
