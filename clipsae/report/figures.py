"""Report figures, written as PNG files next to the report.

Each plotting function takes the numbers it draws (the results table, and the sweep points of
``l0_fvu_points``), writes the PNG atomically and returns the closed matplotlib ``Figure``, whose
artists a test can still count. Artists that carry meaning have a ``gid``: ``arch:<name>`` for an
architecture's line, ``pareto`` for the frontier over all SAEs, ``trained`` and ``sweep`` for
point sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from clipsae.report.runs import RunFiles
from clipsae.report.table import read_json
from clipsae.runtime.atomic import atomic_output

MARKERS = "osD^vP*Xh<>"
POINT_COLUMNS = {"panel": pl.String, "arch": pl.String, "sae": pl.String, "kind": pl.String,
                 "size": pl.String, "L0": pl.Float64, "FVU": pl.Float64}  # fmt: skip


def _panel(row: dict) -> str:
    return f"{row['model']} / {row['layer']} / {row['dataset']}"


def _save(fig: Figure, out_png: Path) -> Figure:
    fig.tight_layout()
    with atomic_output(Path(out_png)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return fig


def _grid(n: int, width: float = 5.5, height: float = 4.0) -> tuple[Figure, list]:
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=110,
                             squeeze=False)  # fmt: skip
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def l0_fvu_points(table: pl.DataFrame, extras: Sequence[RunFiles] = ()) -> pl.DataFrame:
    """One point per trained SAE evaluation (``kind`` ``trained``, from the table's CLIP+SAE rows)
    and per point of its k-sweep or nested sweep (``sweep``, from ``extras.json``), each in the
    panel of its model, layer and evaluation dataset."""
    sae_rows = table.filter(pl.col("variant") == "CLIP+SAE")
    points, arch = [], {}
    for row in sae_rows.iter_rows(named=True):
        arch[row["dataset"], row["model"], row["layer"], row["sae"], row["train"]] = row["arch"]
        points.append({"panel": _panel(row), "arch": row["arch"], "sae": row["sae"],
                       "kind": "trained", "size": "", "L0": row["L0"],
                       "FVU": row["FVU"]})  # fmt: skip
    for run in extras:
        r = run.run
        key = (r.evalset or r.dataset, r.model, r.layer, r.sae, r.dataset)
        for point in read_json(run["extras"]).get("sweep", []):
            size = f"k={point['k']}" if "k" in point else f"prefix={point['prefix']}"
            row = {"model": r.model, "layer": r.layer, "dataset": key[0]}
            points.append({"panel": _panel(row), "arch": arch.get(key, "?"), "sae": r.sae,
                           "kind": "sweep", "size": size, "L0": point["l0"],
                           "FVU": point["fvu"]})  # fmt: skip
    return pl.DataFrame(points, schema=POINT_COLUMNS)


def pareto_front(points: pl.DataFrame) -> pl.DataFrame:
    """The points no other point beats on both L0 and FVU (lower is better), by L0."""
    front, best = [], math.inf
    for row in points.sort("L0", "FVU").iter_rows(named=True):
        if row["FVU"] < best:
            front.append(row)
            best = row["FVU"]
    return pl.DataFrame(front, schema=points.schema)


def plot_l0_vs_fvu(points: pl.DataFrame, out_png: Path) -> Figure:
    """A panel per (model, layer, evaluation dataset); in each, a line per architecture along its
    own frontier, every trained SAE (filled, named) and sweep point (hollow), and the frontier
    over all of them (dashed)."""
    panels = points["panel"].unique(maintain_order=True).to_list() or ["no SAE runs"]
    archs = points["arch"].unique(maintain_order=True).to_list()
    colours = {arch: f"C{i % 10}" for i, arch in enumerate(archs)}
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        here = points.filter(pl.col("panel") == panel)
        for arch in here["arch"].unique(maintain_order=True):
            mine = here.filter(pl.col("arch") == arch)
            front = pareto_front(mine)
            ax.plot(front["L0"], front["FVU"], color=colours[arch], lw=1.5, label=arch,
                    gid=f"arch:{arch}")  # fmt: skip
            sweep = mine.filter(pl.col("kind") == "sweep")
            ax.scatter(sweep["L0"], sweep["FVU"], s=18, facecolors="none",
                       edgecolors=colours[arch], gid="sweep")  # fmt: skip
            trained = mine.filter(pl.col("kind") == "trained")
            ax.scatter(trained["L0"], trained["FVU"], s=45, color=colours[arch], gid="trained")
            for row in trained.iter_rows(named=True):
                ax.annotate(row["sae"], (row["L0"], row["FVU"]), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")  # fmt: skip
        if here.height:
            front = pareto_front(here)
            ax.plot(front["L0"], front["FVU"], color="black", ls="--", lw=0.8, alpha=0.6,
                    label="Pareto frontier", gid="pareto")  # fmt: skip
            if here["L0"].max() > 20 * max(here["L0"].min(), 1e-9):
                ax.set_xscale("log")
            ax.legend(fontsize=7)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("L0 (active latents per image)")
        ax.set_ylabel("FVU (test split, dataset-level)")
        ax.grid(alpha=0.3)
    fig.suptitle("Sparsity vs reconstruction (filled: trained SAEs; hollow: k or prefix sweep)",
                 fontsize=10)  # fmt: skip
    return _save(fig, out_png)


def plot_l0_vs_delta_accuracy(table: pl.DataFrame, out_png: Path) -> Figure:
    """Zero-shot accuracy lost (or won) against L0: a point per CLIP+SAE row (colour: its
    architecture; marker: the evaluation dataset) and per SpLiCE row (grey)."""
    rows = table.filter(pl.col("variant").is_in(["CLIP+SAE", "SpLiCE"]))
    splice = pl.col("variant") == "SpLiCE"
    rows = rows.with_columns(group=pl.when(splice).then(pl.lit("SpLiCE")).otherwise("arch"))
    groups = rows["group"].unique(maintain_order=True).to_list()
    colours = {g: "grey" if g == "SpLiCE" else f"C{i % 10}" for i, g in enumerate(groups)}
    datasets = rows["dataset"].unique(maintain_order=True).to_list()
    markers = {d: MARKERS[i % len(MARKERS)] for i, d in enumerate(datasets)}
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for (group, dataset), part in rows.group_by("group", "dataset", maintain_order=True):
        ax.scatter(part["L0"], part["delta_accuracy"], color=colours[group],
                   marker=markers[dataset], s=40, gid=f"{group}:{dataset}")  # fmt: skip
        for row in part.iter_rows(named=True):
            label = row["sae"] or "SpLiCE"
            ax.annotate(f"{label} ({row['layer']})", (row["L0"], row["delta_accuracy"]),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.axhline(0.0, color="black", lw=0.8)
    handles = [Line2D([], [], color=c, marker="o", ls="", label=g) for g, c in colours.items()]
    handles += [Line2D([], [], color="grey", marker=m, ls="", label=d) for d, m in markers.items()]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if rows.height and rows["L0"].max() > 20 * max(rows["L0"].min(), 1e-9):
        ax.set_xscale("log")
    ax.set_xlabel("L0 (active latents, or SpLiCE concepts, per image)")
    ax.set_ylabel("Δ zero-shot accuracy vs CLIP")
    ax.set_title("Sparsity vs zero-shot accuracy lost")
    ax.grid(alpha=0.3)
    return _save(fig, out_png)


def bar_label(row: dict) -> str:
    if row["variant"] == "CLIP":
        return f"CLIP ({row['model']})"
    if row["variant"] == "SpLiCE":
        return f"SpLiCE ({row['model']})"
    on = "" if row["train"] == row["dataset"] else f", trained on {row['train']}"
    return f"+ {row['sae']} ({row['model']} / {row['layer']}{on})"


def plot_accuracy_bars(table: pl.DataFrame, out_png: Path) -> Figure:
    """A panel per evaluation dataset: zero-shot accuracy of CLIP, SpLiCE and every CLIP+SAE
    row, one horizontal bar each, in table order."""
    datasets = table["dataset"].unique(maintain_order=True).to_list() or ["no evaluations"]
    colours = {"CLIP": "black", "SpLiCE": "grey", "CLIP+SAE": "C0"}
    height = 0.6 + 0.3 * max((table["dataset"] == d).sum() for d in datasets)
    fig, axes = _grid(len(datasets), width=6.0, height=max(height, 2.5))
    for ax, dataset in zip(axes, datasets, strict=True):
        rows = list(table.filter(pl.col("dataset") == dataset).iter_rows(named=True))
        labels = [bar_label(row) for row in rows]
        ax.barh(range(len(rows)), [row["accuracy"] for row in rows],
                color=[colours[row["variant"]] for row in rows], gid="bars")  # fmt: skip
        for i, row in enumerate(rows):
            ax.text(row["accuracy"], i, f" {row['accuracy']:.3f}", va="center", fontsize=7)
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.1)
        ax.set_xlabel("zero-shot accuracy (test split)")
        ax.set_title(dataset, fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    return _save(fig, out_png)
