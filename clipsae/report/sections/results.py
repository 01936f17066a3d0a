"""The results table, one CLIP row and one CLIP+SAE row per run."""

from __future__ import annotations

import polars as pl

from clipsae.report.document import ReportInputs
from clipsae.report.table import FVU_DEFINITION, to_markdown


def section(inputs: ReportInputs) -> list[str]:
    df = pl.read_parquet(inputs.table)
    return ["## Results", "", to_markdown(df), FVU_DEFINITION, ""]
