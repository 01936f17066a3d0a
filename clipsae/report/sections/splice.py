"""The SpLiCE baseline per model and dataset, beside the SAEs on the same final embedding."""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines, read_json

COLUMNS = ("model", "dataset", "method", "images", "accuracy CLIP", "accuracy", "Δ accuracy",
           "L0", "cosine", "dictionary")  # fmt: skip


def section(inputs: ReportInputs) -> list[str]:
    if not inputs.splice:
        return []
    table = pl.read_parquet(inputs.table)
    rows = []
    for splice in inputs.splice:
        result = read_json(splice.path)
        rows.append((splice.model, splice.dataset, "SpLiCE", result["n"],
                     result["accuracy_clip"], result["accuracy_sae"], result["delta_accuracy"],
                     result["l0"], result["cosine"],
                     f"{result['n_concepts']} concepts, l1={result['l1']:g}"))  # fmt: skip
        saes = table.filter(
            (pl.col("variant") == "CLIP+SAE") & (pl.col("layer") == "final")
            & (pl.col("model") == splice.model) & (pl.col("dataset") == splice.dataset)
        )  # fmt: skip
        clip = table.filter(
            (pl.col("variant") == "CLIP") & (pl.col("model") == splice.model)
            & (pl.col("dataset") == splice.dataset)
        )["accuracy"]  # fmt: skip
        for row in saes.iter_rows(named=True):
            rows.append((splice.model, splice.dataset, f"SAE {row['sae']}", None,
                         clip[0] if len(clip) else None, row["accuracy"], row["delta_accuracy"],
                         row["L0"], row["cosine"], f"{row['dict_size']} latents"))  # fmt: skip
    return [
        "## SpLiCE baseline",
        "",
        "SpLiCE (Bhalla et al. 2024) writes each final image embedding as a non-negative sparse "
        "combination of the vocabulary's text embeddings, both mean-centred, with no training. "
        "Its zero-shot accuracy, concepts per image (L0) and cosine to the embedding stand "
        "beside the SAEs trained on the same layer (their accuracy is on every test image, "
        "SpLiCE's on a seeded subset of `images`, compared with CLIP on that subset).",
        "",
        *markdown_lines(COLUMNS, rows),
        "",
    ]
