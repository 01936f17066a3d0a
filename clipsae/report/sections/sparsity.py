"""L0 against FVU for every SAE run, as a figure."""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.figures import plot_l0_vs_fvu

FIGURE = "l0_vs_fvu.png"


def section(inputs: ReportInputs) -> list[str]:
    figure = inputs.figures_dir / FIGURE
    plot_l0_vs_fvu(pl.read_parquet(inputs.table), figure)
    return ["## Sparsity vs reconstruction", "", f"![L0 vs FVU]({inputs.relative(figure)})", ""]
