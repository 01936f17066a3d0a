"""Report figures, written as PNG files next to the report."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl
from matplotlib.lines import Line2D

from clipsae.runtime.atomic import atomic_output

MARKERS = "osD^vP*Xh<>"


def plot_l0_vs_fvu(df: pl.DataFrame, out_png: Path) -> None:
    """One point per SAE run: colour names the SAE, the marker the (model/layer, dataset)."""
    sae_rows = df.filter(pl.col("variant") == "CLIP+SAE")
    colours = {
        name: f"C{i % 10}" for i, name in enumerate(sae_rows["sae"].unique(maintain_order=True))
    }
    where = sae_rows.select(pl.format("{}/{} · {}", "model", "layer", "dataset")).to_series()
    markers = {
        w: MARKERS[i % len(MARKERS)] for i, w in enumerate(where.unique(maintain_order=True))
    }
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for row, place in zip(sae_rows.iter_rows(named=True), where, strict=True):
        ax.scatter(row["L0"], row["FVU"], c=colours[row["sae"]], marker=markers[place], s=40)
    handles = [Line2D([], [], color=c, marker="o", ls="", label=n) for n, c in colours.items()]
    handles += [Line2D([], [], color="grey", marker=m, ls="", label=w) for w, m in markers.items()]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if sae_rows["L0"].max() > 20 * max(sae_rows["L0"].min(), 1e-9):
        ax.set_xscale("log")
    ax.set_xlabel("L0 (active latents per image)")
    ax.set_ylabel("FVU (test split, dataset-level)")
    ax.set_title("Sparsity vs reconstruction")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_output(Path(out_png)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
