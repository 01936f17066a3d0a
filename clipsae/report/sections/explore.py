"""Exploring each run's codes: k-means clusters of its test images, and one worked example each
of ``clipsae explain`` and ``clipsae search`` (rule ``explore``), so a reader sees what the
commands answer before running them."""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.runs import RunFiles
from clipsae.report.table import markdown_lines, read_json


def _named(latents: list[int], names: list[str]) -> str:
    return ", ".join(
        f"{lat} ({name})" if name else str(lat) for lat, name in zip(latents, names, strict=True)
    )


def _run_lines(run: RunFiles, inputs: ReportInputs) -> list[str]:
    clusters = pl.read_parquet(run["explore_clusters"])
    examples = read_json(run["explore_examples"])
    cluster_rows = [
        (
            r["cluster"],
            r["size"],
            _named(r["top_latents"], r["top_names"]),
            ", ".join(r["member_ids"]),
        )
        for r in clusters.iter_rows(named=True)
    ]
    explained = examples["explain"]
    explain_rows = [
        (r["latent"], r["activation"], r["label_en"] or "", r["label_ru"] or "")
        for r in explained["latents"]
    ]
    search = examples["search"]
    search_rows = [
        (r["latent"], r["cosine"], r["label_en"] or "", r["label_ru"] or "",
         ", ".join(image["id"] for image in r["images"]))
        for r in search["latents"]
    ]  # fmt: skip
    return [
        f"### {run.run.title}",
        "",
        f"k-means of the SAE codes of {examples['clusters']['n_rows']} test images into "
        f"{examples['clusters']['n_clusters']} clusters, largest first; the images shown are "
        "the nearest to each centre.",
        "",
        *markdown_lines(("cluster", "size", "top latents", "images"), cluster_rows),
        "",
        f"![clusters]({inputs.relative(run['explore_clusters_image'])})",
        "",
        f"`clipsae explain {explained['id']}`: the image's most active latents.",
        "",
        *markdown_lines(("latent", "activation", "EN", "RU"), explain_rows),
        "",
        f'`clipsae search "{search["text"]}"`: the latents nearest to the text (a class name '
        "of the dataset), with their top images.",
        "",
        *markdown_lines(("latent", "cosine", "EN", "RU", "top images"), search_rows),
        "",
        f"![explain and search]({inputs.relative(run['explore_examples_image'])})",
        "",
    ]


def section(inputs: ReportInputs) -> list[str]:
    lines = ["## Exploring the codes: clusters, explain, search", ""]
    for run in inputs.runs:
        lines += _run_lines(run, inputs)
    return lines
