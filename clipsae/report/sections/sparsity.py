"""L0 against FVU: every trained SAE and its k or prefix sweep, with the Pareto frontier."""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.figures import l0_fvu_points, plot_l0_vs_fvu

FIGURE = "l0_vs_fvu.png"


def section(inputs: ReportInputs) -> list[str]:
    figure = inputs.figures_dir / FIGURE
    plot_l0_vs_fvu(l0_fvu_points(pl.read_parquet(inputs.table), inputs.extras), figure)
    return [
        "## Sparsity vs reconstruction",
        "",
        "One panel per model, layer and evaluation dataset. Filled points are the trained SAEs, "
        "hollow ones the same SAEs run at another inference k (TopK family) or on a prefix of "
        "the dictionary (Matryoshka), from the sweep below. Each architecture's line joins its "
        "best points; the dashed line is the Pareto frontier over all of them (lower left is "
        "better).",
        "",
        f"![L0 vs FVU]({inputs.relative(figure)})",
        "",
    ]
