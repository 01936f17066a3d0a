"""The most frequent latents of each run: collage, frequency and vocabulary names (EN / RU)."""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.runs import RunFiles


def _run_lines(run: RunFiles, inputs: ReportInputs) -> list[str]:
    stats = pl.read_parquet(run["stats"])
    names = pl.read_csv(run["names"])
    lines = [
        f"### {run.run.title}",
        "",
        "| latent | frequency | EN | RU | score | collage |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(run["collages"].glob("latent_*.jpg")):
        latent = int(path.stem.split("_")[1])
        freq = stats.filter(pl.col("latent") == latent)["frequency"].item()
        name = names.filter(pl.col("latent") == latent).row(0, named=True)
        lines.append(
            f"| {latent} | {freq:.3f} | {name['top_en']} | {name['top_ru']} | "
            f"{name['score']:.2f} | ![latent {latent}]({inputs.relative(path)}) |"
        )
    return [*lines, ""]


def section(inputs: ReportInputs) -> list[str]:
    lines = ["## Most frequent latents, named by the concept vocabulary (EN / RU)", ""]
    for run in inputs.runs:
        lines += _run_lines(run, inputs)
    return lines
