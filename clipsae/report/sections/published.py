"""Published figures beside ours, for every ``saes`` entry that carries a ``published`` block.

Each published figure is matched with the rows of the results table of the same SAE evaluated on
the same dataset (one per model, layer and training dataset; a CLIP figure with the CLIP row of
each of those models); where the table has no such row the
"ours" cell stays blank rather than borrowing a neighbour's number.
"""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines

# A published metric -> (table variant, table column).
METRICS = {
    "accuracy_clip": ("CLIP", "accuracy"),
    "accuracy_sae": ("CLIP+SAE", "accuracy"),
    "top5_clip": ("CLIP", "top5_accuracy"),
    "top5_sae": ("CLIP+SAE", "top5_accuracy"),
    "L0": ("CLIP+SAE", "L0"),
    "R2Score": ("CLIP+SAE", "R2Score"),
    "FVU": ("CLIP+SAE", "FVU"),
    "cosine": ("CLIP+SAE", "cosine"),
}
COLUMNS = ("sae", "dataset", "metric", "published", "ours", "model / layer / trained on")


def _ours(df: pl.DataFrame, sae: str, dataset: str, metric: str) -> list[tuple[object, str]]:
    variant, column = METRICS[metric]
    mine = df.filter(
        (pl.col("sae") == sae) & (pl.col("dataset") == dataset) & (pl.col("variant") == "CLIP+SAE")
    )
    if variant == "CLIP":  # one CLIP row per (dataset, model): those of the SAE's models
        rows = df.filter(
            (pl.col("variant") == "CLIP") & (pl.col("dataset") == dataset)
            & pl.col("model").is_in(mine["model"].unique().to_list())
        )  # fmt: skip
    else:
        rows = mine
    if column not in rows.columns or rows.is_empty():
        return [(None, "")]
    return [
        (row[column], f"{row['model']} (CLIP)" if variant == "CLIP"
         else f"{row['model']} / {row['layer']} / {row['train']}")
        for row in rows.iter_rows(named=True)
    ]  # fmt: skip


def section(inputs: ReportInputs) -> list[str]:
    if not inputs.published:
        return []
    df = pl.read_parquet(inputs.table)
    rows, sources = [], []
    for sae, published in inputs.published.items():
        sources.append(
            f"- **{sae}**: {published.get('source', 'source not given')}"
            + (f"; {published['note']}" if "note" in published else "")
        )
        for dataset, figures in published.get("on", {}).items():
            for metric, value in figures.items():
                for ours, where in _ours(df, sae, dataset, metric):
                    rows.append((sae, dataset, metric, value, ours, where))
    return [
        "## Published vs ours",
        "",
        *markdown_lines(COLUMNS, rows),
        "",
        *sources,
        "",
    ]
