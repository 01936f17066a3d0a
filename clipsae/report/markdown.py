"""The results table (Parquet as the source of truth, Markdown for people) and the final report."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl
from matplotlib.lines import Line2D

from clipsae.runtime.atomic import atomic_output

FVU_DEFINITION = (
    "FVU is dataset-level: sum ||x - x_hat||² / sum ||x - mean(x)||² over the test split, in the "
    "activations' original units; R² = 1 - FVU. L0 is the mean number of non-zero latents per "
    "image. Dead % counts latents that never fire on the test split."
)
MARKERS = "osD^vP*Xh<>"
COLUMNS = [
    "dataset", "model", "layer", "sae", "variant", "accuracy", "delta_accuracy", "dict_size",
    "L0", "MSE", "L1", "R2Score", "FVU", "cosine", "dead_pct", "notes",
]  # fmt: skip


def run_dir(results: Path, section: str, run: dict) -> Path:
    return Path(results) / section / run["model"] / run["layer"] / run["dataset"] / run["sae"]


def _read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _rows(results: Path, run: dict) -> list[dict]:
    """The CLIP row and the CLIP+SAE row of one (model, layer, dataset, sae) run."""
    recon = _read_json(run_dir(results, "eval", run) / "recon.json")
    zs = _read_json(run_dir(results, "eval", run) / "zeroshot.json")
    cfg = _read_json(run_dir(results, "sae", run) / "cfg.json")
    key = {k: run[k] for k in ("dataset", "model", "layer", "sae")}
    empty = dict.fromkeys(["delta_accuracy", "dict_size", "L0", "MSE", "L1", "R2Score", "FVU",
                           "cosine", "dead_pct"])  # fmt: skip
    clip = {**key, **empty, "variant": "CLIP", "accuracy": zs["accuracy_clip"],
            "notes": f"zero-shot, {zs['n_classes']} classes, n={zs['n']}"}  # fmt: skip
    sae = {
        **key,
        "variant": "CLIP+SAE",
        "accuracy": zs["accuracy_sae"],
        "delta_accuracy": zs["delta_accuracy"],
        "dict_size": cfg["d_sae"],
        "L0": recon["l0"],
        "MSE": recon["mse"],
        "L1": recon["l1"],
        "R2Score": recon["r2"],
        "FVU": recon["fvu"],
        "cosine": recon["cosine"],
        "dead_pct": 100.0 * recon["dead_frac"],
        "notes": f"{cfg['arch']} k={cfg.get('k')}, {zs['method']} zero-shot, "
        f"KL={zs['kl_clip_to_sae']:.3g}",
    }
    return [clip, sae]


def build_table(results: Path, runs: Sequence[dict]) -> pl.DataFrame:
    rows = [row for run in runs for row in _rows(results, run)]
    return pl.DataFrame(rows, schema_overrides={"dict_size": pl.Int64}).select(COLUMNS)


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_markdown(df: pl.DataFrame) -> str:
    header = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join([header, rule, *body]) + "\n"


def results_table(results: Path, runs: Sequence[dict], out_parquet: Path, out_md: Path) -> None:
    df = build_table(results, runs)
    with atomic_output(Path(out_parquet)) as tmp:
        df.write_parquet(tmp)
    with atomic_output(Path(out_md)) as tmp:
        tmp.write_text(to_markdown(df) + "\n" + FVU_DEFINITION + "\n", encoding="utf-8")


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


def _latent_section(results: Path, run: dict, report_dir: Path) -> list[str]:
    stats = pl.read_parquet(run_dir(results, "features", run) / "stats.parquet")
    names = pl.read_csv(run_dir(results, "interpret", run) / "vocab.csv")
    collage_dir = run_dir(results, "collages", run)
    shown = sorted(collage_dir.glob("latent_*.jpg"))
    title = f"### {run['sae']} on {run['model']} / {run['layer']} / {run['dataset']}"
    lines = [
        title,
        "",
        "| latent | frequency | EN | RU | score | collage |",
        "|---|---|---|---|---|---|",
    ]
    for path in shown:
        latent = int(path.stem.split("_")[1])
        freq = stats.filter(pl.col("latent") == latent)["frequency"].item()
        name = names.filter(pl.col("latent") == latent).row(0, named=True)
        rel = path.relative_to(report_dir).as_posix()
        lines.append(
            f"| {latent} | {freq:.3f} | {name['top_en']} | {name['top_ru']} | "
            f"{name['score']:.2f} | ![latent {latent}]({rel}) |"
        )
    return [*lines, ""]


def _data_section(results: Path, runs: Sequence[dict]) -> list[str]:
    """Images extracted per split and the bad images skipped, by reason (from each meta.json)."""
    lines = [
        "## Data",
        "",
        "| dataset | model | layer | split | images | skipped |",
        "|---|---|---|---|---|---|",
    ]
    seen = sorted({(r["dataset"], r["model"], r["layer"]) for r in runs})
    for dataset, model, layer in seen:
        for split in ("train", "test"):
            meta = _read_json(
                results / "activations" / model / dataset / split / layer / "meta.json"
            )
            skipped = meta["extra"].get("skipped") or {}
            reasons = ", ".join(f"{reason}: {n}" for reason, n in skipped.items()) or "0"
            lines.append(
                f"| {dataset} | {model} | {layer} | {split} | {meta['n_rows']} | {reasons} |"
            )
    return [*lines, ""]


def write_report(results: Path, runs: Sequence[dict], out_md: Path) -> None:
    results, out_md = Path(results), Path(out_md)
    report_dir = out_md.parent
    df = pl.read_parquet(results / "tables" / "results.parquet")
    figure = results / "figures" / "l0_vs_fvu.png"
    plot_l0_vs_fvu(df, figure)
    builds = sorted((results / "models").glob("*/build.json"))
    lines = ["# clipsae report", "", "## Results", "", to_markdown(df), FVU_DEFINITION, ""]
    lines += _data_section(results, runs)
    lines += ["## Sparsity vs reconstruction", "",
              f"![L0 vs FVU]({figure.relative_to(report_dir).as_posix()})", ""]  # fmt: skip
    if builds:
        lines += ["## Embedded CLIP models", ""]
        for path in builds:
            info = _read_json(path)
            lines.append(
                f"- `{path.parent.name}` ({info['arch']}): trained from scratch on generated "
                f"captions, {info['config']['steps']} steps, contrastive loss "
                f"{info['initial_loss']:.3f} → {info['final_loss']:.3f}"
            )
        lines.append("")
    lines += ["## Most frequent latents, named by the concept vocabulary (EN / RU)", ""]
    for run in runs:
        lines += _latent_section(results, run, report_dir)
    with atomic_output(out_md) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
