"""The most frequent latents of each run, best-scored first: collage, frequency, the chosen name
(EN / RU) with its detection AUROC, and the vocabulary and VLM names it was chosen from."""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.runs import RunFiles
from clipsae.report.table import markdown_lines

COLUMNS = ("latent", "frequency", "EN", "RU", "source", "AUROC", "vocabulary", "VLM", "flags",
           "collage")  # fmt: skip


def _vlm_label(vlm: dict[int, dict], latent: int) -> str:
    row = vlm.get(latent)
    if row is None or row["status"] != "ok":
        return "-" if row is None else f"({row['status']})"
    return f"{row['label_en']} / {row['label_ru']}"


def _run_lines(run: RunFiles, inputs: ReportInputs) -> list[str]:
    stats = pl.read_parquet(run["stats"])
    chosen = pl.read_csv(run["interpretations"], schema_overrides={"score": pl.Float64})
    vocab = {r["latent"]: r for r in pl.read_csv(run["names"]).iter_rows(named=True)}
    vlm = {
        r["latent"]: r
        for r in pl.read_csv(run["vlm_names"], infer_schema_length=0)
        .with_columns(pl.col("latent").cast(pl.Int64))
        .iter_rows(named=True)
    }
    shown = {int(p.stem.split("_")[1]): p for p in run["collages"].glob("latent_*.jpg")}
    rows = (
        chosen.filter(pl.col("latent").is_in(list(shown)))
        .join(stats.select("latent", "frequency"), on="latent")
        .sort(["score", "latent"], descending=[True, False], nulls_last=True)
    )
    table = [
        (
            r["latent"],
            f"{r['frequency']:.3f}",
            r["label_en"],
            r["label_ru"],
            r["source"],
            "" if r["score"] is None else f"{r['score']:.2f}",
            f"{vocab[r['latent']]['top_en']} / {vocab[r['latent']]['top_ru']}",
            _vlm_label(vlm, r["latent"]),
            r["flags"] or "",
            f"![latent {r['latent']}]({inputs.relative(shown[r['latent']])})",
        )
        for r in rows.iter_rows(named=True)
    ]
    return [f"### {run.run.title}", "", *markdown_lines(COLUMNS, table), ""]


def section(inputs: ReportInputs) -> list[str]:
    lines = [
        "## Most frequent latents and their names",
        "",
        "Sorted by the detection AUROC of the chosen name (how well its text embedding ranks "
        "held-out images that activate the latent above images that do not; 0.5 is chance).",
        "",
    ]
    for run in inputs.runs:
        lines += _run_lines(run, inputs)
    return lines
