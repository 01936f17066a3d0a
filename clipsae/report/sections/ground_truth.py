"""Do the latents recover the factors that generated the images, and are they named right?
Against raw CLIP dimensions and random directions, so the SAE's gain is visible."""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines, summary_entries

COLUMNS = ("run", "method", "values recovered (F1 ≥ 0.8)", "by factor", "mean F1",
           "mean AUROC", "named right, top-1 / top-3 (recovered)", "latents")  # fmt: skip


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.0f}%"


def section(inputs: ReportInputs) -> list[str]:
    if not inputs.truth:
        return []
    rows = []
    for title, method, entry in summary_entries(inputs.truth, role="ground_truth", table="methods"):
        by_factor = ", ".join(f"{f} {_pct(v)}" for f, v in entry["recovered_by_factor"].items())
        naming = " / ".join(_pct(entry.get(f"naming_{k}_recovered")) for k in ("top1", "top3"))
        latents = ", ".join(f"{k}: {v}" for k, v in (entry.get("latents") or {}).items())
        rows.append((title, method, _pct(entry["recovered_fraction"]), by_factor,
                     entry["mean_f1"], entry["mean_auroc"], naming, latents))  # fmt: skip
    return [
        "## Ground truth: latents as detectors of the generating factors",
        "",
        "For each factor value, the best single unit as a detector: unit and threshold chosen on "
        "the train split, F1 and AUROC on the test split. Naming counts a recovered value's "
        "detector latent as named right when the value's words are in its vocabulary name.",
        "",
        *markdown_lines(COLUMNS, rows),
        "",
    ]
