"""How trustworthy each run's names are: detection AUROC of the chosen names against shuffled
names, the distribution of scores, and what cleaning did (sources, flags, shared names)."""

from __future__ import annotations

import numpy as np
import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines, read_json

BARS = " ▁▂▃▄▅▆▇█"


def histogram(scores: np.ndarray, *, bins: int = 10) -> str:
    """A one-line histogram of AUROCs over [0, 1], so the distribution reads in plain text."""
    counts, _ = np.histogram(scores, bins=bins, range=(0.0, 1.0))
    top = max(int(counts.max()), 1)
    return "".join(BARS[int(np.ceil(c / top * (len(BARS) - 1)))] for c in counts)


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items() if v) or "-"


def _simulation(summary: dict | None) -> str:
    """The VLM simulation medians, or why there are none (no key: skipped)."""
    if summary is None:
        return "-"
    malformed = f", {len(summary['malformed'])} malformed" if summary["malformed"] else ""
    if summary["n_scored"]:
        return (
            f"{summary['median_accuracy']:.2f} / {summary['median_f1']:.2f} "
            f"(n={summary['n_scored']}, base rate {summary['median_base_rate']:.2f}{malformed})"
        )
    return f"skipped: {summary['skipped_reason']}" if summary["skipped_reason"] else f"-{malformed}"


def _row(inputs: ReportInputs, i: int) -> tuple:
    run = inputs.runs[i]
    summary = read_json(run["interpretations_summary"])
    scores = (
        pl.read_csv(run["interpretations"], schema_overrides={"score": pl.Float64})["score"]
        .drop_nulls()
        .to_numpy()
    )
    detection = summary["detection"]
    quartiles = (
        " / ".join(f"{q:.2f}" for q in np.quantile(scores, [0.25, 0.5, 0.75]))
        if len(scores)
        else ""
    )
    agreement = summary["agreement"]
    return (
        run.run.title,
        detection["n_scored"],
        detection["median_auroc"],
        detection["median_shuffled"],
        quartiles,
        f"`{histogram(scores)}`" if len(scores) else "",
        _fmt_counts(summary["by_source"]),
        _fmt_counts(summary["by_flag"]),
        f"{summary['n_names']} ({len(summary['shared_names'])} shared)",
        None if agreement is None else agreement["median"],
        _simulation(summary.get("simulation")),
    )


def section(inputs: ReportInputs) -> list[str]:
    columns = ("run", "scored", "median AUROC", "shuffled names", "AUROC p25 / p50 / p75",
               "histogram 0..1", "sources", "flags", "distinct names",
               "vocabulary-VLM agreement", "VLM simulation accuracy / F1")  # fmt: skip
    rows = [_row(inputs, i) for i in range(len(inputs.runs))]
    return [
        "## Names: scores and cleaning",
        "",
        "Chosen names should rank activating images clearly better than the same names shuffled "
        "across latents; agreement is the median cosine of the vocabulary and VLM names' text "
        "embeddings, where both exist. VLM simulation: the VLM picks, from a shuffled grid of "
        "activating and non-activating images, those that show the name (medians over the "
        "collaged latents; answering 'all' scores the base rate in accuracy).",
        "",
        *markdown_lines(columns, rows),
        "",
    ]
