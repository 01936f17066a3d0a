"""Images extracted per split and the bad images skipped, by reason (from each ``meta.json``)."""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines, read_json


def section(inputs: ReportInputs) -> list[str]:
    order = {"train": 0, "test": 1}
    rows = []
    for ex in sorted(
        inputs.extractions, key=lambda e: (e.dataset, e.model, e.layer, order.get(e.split, 2))
    ):
        meta = read_json(ex.meta)
        skipped = meta["extra"].get("skipped") or {}
        reasons = ", ".join(f"{reason}: {n}" for reason, n in skipped.items()) or "0"
        rows.append((ex.dataset, ex.model, ex.layer, ex.split, meta["n_rows"], reasons))
    columns = ("dataset", "model", "layer", "split", "images", "skipped")
    return ["## Data", "", *markdown_lines(columns, rows), ""]
