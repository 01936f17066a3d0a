"""Steering, checked: each class's detector latent set to multiples of its 99th percentile
(and ablated); how often predictions turn to that class, and how often the other factor moves."""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines, summary_entries

RATES = ("flip_to_target", "target_removed", "changed", "other_changed")


def section(inputs: ReportInputs) -> list[str]:
    if not inputs.steering:
        return []
    entries = summary_entries(inputs.steering, role="steering", table="settings")
    rows = [
        (title, setting, entry["n_latents"], *(entry.get(rate) for rate in RATES))
        for title, setting, entry in entries
    ]
    return [
        "## Steering",
        "",
        "Mean over the latents found as detectors of this dataset's classes. `flip_to_target`: "
        "share of the images not predicted as the class before whose zero-shot prediction becomes "
        "it; `target_removed`: share of the images predicted as the class before that no longer "
        "are; "
        "`other_changed`: share whose prediction of the other factor changes.",
        "",
        *markdown_lines(("run", "setting", "latents", *RATES), rows),
        "",
    ]
