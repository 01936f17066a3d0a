"""Zero-shot accuracy of CLIP, SpLiCE and CLIP+SAE per dataset, and what sparsity costs in it."""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.figures import plot_accuracy_bars, plot_l0_vs_delta_accuracy

BARS = "accuracy.png"
DELTA = "l0_vs_delta_accuracy.png"


def section(inputs: ReportInputs) -> list[str]:
    table = pl.read_parquet(inputs.table)
    bars, delta = inputs.figures_dir / BARS, inputs.figures_dir / DELTA
    plot_accuracy_bars(table, bars)
    plot_l0_vs_delta_accuracy(table, delta)
    return [
        "## Zero-shot accuracy: CLIP vs CLIP+SAE",
        "",
        "Per evaluation dataset, the zero-shot accuracy of CLIP, of the SpLiCE decomposition "
        "of its final embedding and of CLIP with each SAE's reconstruction in place of the "
        "activation (the rows of the results table):",
        "",
        f"![accuracy per dataset]({inputs.relative(bars)})",
        "",
        "The accuracy each reconstruction loses against CLIP on the same images, by how many "
        "latents (SpLiCE: concepts) it uses per image:",
        "",
        f"![L0 vs delta accuracy]({inputs.relative(delta)})",
        "",
    ]
