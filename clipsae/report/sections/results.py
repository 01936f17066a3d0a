"""The results table: one CLIP row per (dataset, model), a SpLiCE row per (dataset, model)
evaluated at final, and a CLIP+SAE row per evaluation."""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.table import FVU_DEFINITION, to_markdown


def section(inputs: ReportInputs) -> list[str]:
    df = pl.read_parquet(inputs.table)
    return ["## Results", "", to_markdown(df), FVU_DEFINITION, ""]
