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


def arch_colours(archs) -> dict[str, str]:
    """One colour per architecture, the same in every figure: by sorted name."""
    return {arch: f"C{i % 10}" for i, arch in enumerate(sorted(set(archs)))}


def _l0_scale(ax, l0: pl.Series) -> None:
    """A log-like L0 axis when L0 spans more than 20x; symmetric-log, so that a sweep point with
    nothing active (L0 = 0, a Matryoshka prefix too small to fire) stays on the chart."""
    if len(l0) and l0.max() > 20 * max(l0.filter(l0 > 0).min() or 1.0, 1e-9):
        ax.set_xscale("symlog", linthresh=1.0)


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


def fvu_ceiling(points: pl.DataFrame) -> float:
    """The top of a panel's FVU axis: room above the trained SAEs and the frontier, at least
    1.05 (FVU 1 is the mean's), so that a sweep's dense end (FVU in the tens when a TopK SAE runs
    far above its trained k) does not flatten the rest."""
    trained = points.filter(pl.col("kind") == "trained")["FVU"].to_list()
    near = [*trained, *pareto_front(points)["FVU"].to_list()]
    return max(1.05, 1.3 * max(near, default=1.0))


def plot_l0_vs_fvu(points: pl.DataFrame, out_png: Path) -> Figure:
    """A panel per (model, layer, evaluation dataset); in each, a line per architecture along its
    own frontier, every trained SAE (filled, a marker per SAE in the legend) and sweep point
    (hollow; above the panel's FVU ceiling drawn as a triangle on it, gid ``offscale``), and the
    frontier over all of them (dashed)."""
    panels = points["panel"].unique(maintain_order=True).to_list() or ["no SAE runs"]
    colours = arch_colours(points["arch"])
    names = sorted(set(points["sae"]))
    markers = {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(names)}
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        here = points.filter(pl.col("panel") == panel)
        top = fvu_ceiling(here)
        for arch in sorted(set(here["arch"])):
            mine = here.filter(pl.col("arch") == arch)
            front = pareto_front(mine)
            ax.plot(front["L0"], front["FVU"], color=colours[arch], lw=1.5, label=arch,
                    gid=f"arch:{arch}")  # fmt: skip
            sweep = mine.filter((pl.col("kind") == "sweep") & (pl.col("FVU") <= top))
            ax.scatter(sweep["L0"], sweep["FVU"], s=18, facecolors="none",
                       edgecolors=colours[arch], gid="sweep")  # fmt: skip
            above = mine.filter(pl.col("FVU") > top)
            if above.height:
                ax.scatter(above["L0"], [top] * above.height, s=22, marker="^",
                           facecolors="none", edgecolors=colours[arch], clip_on=False,
                           gid="offscale")  # fmt: skip
            trained = mine.filter((pl.col("kind") == "trained") & (pl.col("FVU") <= top))
            for row in trained.iter_rows(named=True):
                ax.scatter(row["L0"], row["FVU"], s=50, color=colours[arch],
                           marker=markers[row["sae"]], label=row["sae"], gid="trained",
                           zorder=3)  # fmt: skip
        if here.height:
            front = pareto_front(here)
            ax.plot(front["L0"], front["FVU"], color="black", ls="--", lw=0.8, alpha=0.6,
                    label="Pareto frontier", gid="pareto")  # fmt: skip
            _l0_scale(ax, here["L0"])
            ax.set_ylim(0, top)
            ax.legend(fontsize=7)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("L0 (active latents per image)")
        ax.set_ylabel("FVU (test split, dataset-level)")
        ax.grid(alpha=0.3)
    fig.suptitle("Sparsity vs reconstruction (filled: trained SAEs; hollow: k or prefix sweep; "
                 "▲: FVU above the axis)", fontsize=10)  # fmt: skip
    return _save(fig, out_png)


def plot_l0_vs_delta_accuracy(table: pl.DataFrame, out_png: Path) -> Figure:
    """Zero-shot accuracy lost (or won) against L0: a point per CLIP+SAE row (colour: its
    architecture; marker: the evaluation dataset) and per SpLiCE row (grey)."""
    rows = table.filter(pl.col("variant").is_in(["CLIP+SAE", "SpLiCE"]))
    splice = pl.col("variant") == "SpLiCE"
    rows = rows.with_columns(group=pl.when(splice).then(pl.lit("SpLiCE")).otherwise("arch"))
    colours = {**arch_colours(rows.filter(~splice)["arch"]), "SpLiCE": "grey"}
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
    present = set(rows["group"])
    handles = [
        Line2D([], [], color=c, marker="o", ls="", label=g)
        for g, c in colours.items()
        if g in present
    ]
    handles += [
        Line2D([], [], color="black", marker=m, ls="", fillstyle="none", label=d)
        for d, m in markers.items()
    ]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _l0_scale(ax, rows["L0"])
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
