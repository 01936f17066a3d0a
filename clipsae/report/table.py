"""The results table: Parquet as the source of truth, Markdown for people."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import polars as pl

from clipsae.report.runs import RunFiles
from clipsae.runtime.atomic import atomic_output

FVU_DEFINITION = (
    "FVU is dataset-level: sum ||x - x_hat||² / sum ||x - mean(x)||² over the test split, in the "
    "activations' original units; R² = 1 - FVU. L0 is the mean number of non-zero latents per "
    "image. Dead % counts latents that never fire on the test split."
)
COLUMNS = [
    "dataset", "train", "model", "layer", "sae", "variant", "accuracy", "top5_accuracy",
    "delta_accuracy", "dict_size", "L0", "MSE", "L1", "R2Score", "FVU", "cosine", "dead_pct",
    "notes",
]  # fmt: skip


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def summary_entries(
    runs: Sequence[RunFiles], *, role: str, table: str
) -> Iterator[tuple[str, str, dict]]:
    """``(run title, key, entry)`` for every entry of the ``table`` mapping in each run's ``role``
    summary JSON, in file order: the rows of the sections that tabulate one mapping per run."""
    for run in runs:
        for key, entry in read_json(run[role])[table].items():
            yield run.run.title, key, entry


def _rows(run: RunFiles) -> list[dict]:
    """The CLIP row and the CLIP+SAE row of one evaluation of a (model, layer, dataset, sae)
    run: ``dataset`` is the evaluation's, ``train`` the SAE's training dataset."""
    recon = read_json(run["recon"])
    zs = read_json(run["zeroshot"])
    cfg = read_json(run["cfg"])
    r = run.run
    key = {"dataset": r.evalset or r.dataset, "train": r.dataset, "model": r.model,
           "layer": r.layer, "sae": r.sae}  # fmt: skip
    empty = dict.fromkeys(["delta_accuracy", "dict_size", "L0", "MSE", "L1", "R2Score", "FVU",
                           "cosine", "dead_pct"])  # fmt: skip
    clip = {**key, **empty, "variant": "CLIP", "accuracy": zs["accuracy_clip"],
            "top5_accuracy": zs.get("top5_clip"),
            "notes": f"zero-shot, {zs['n_classes']} classes, n={zs['n']}"}  # fmt: skip
    sae = {
        **key,
        "variant": "CLIP+SAE",
        "accuracy": zs["accuracy_sae"],
        "top5_accuracy": zs.get("top5_sae"),  # absent from files written before top-5
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


def build_table(runs: Sequence[RunFiles]) -> pl.DataFrame:
    rows = [row for run in runs for row in _rows(run)]
    types = {"dict_size": pl.Int64, "top5_accuracy": pl.Float64}
    return pl.DataFrame(rows, schema_overrides=types).select(COLUMNS)


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_lines(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table as lines: floats to 4 significant digits, missing values blank."""
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "---|" * len(columns)
    return [header, rule, *("| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows)]


def to_markdown(df: pl.DataFrame) -> str:
    return "\n".join(markdown_lines(df.columns, df.iter_rows())) + "\n"


def results_table(*, runs: Sequence[RunFiles], out_parquet: Path, out_md: Path) -> None:
    df = build_table(runs)
    with atomic_output(Path(out_parquet)) as tmp:
        df.write_parquet(tmp)
    with atomic_output(Path(out_md)) as tmp:
        tmp.write_text(to_markdown(df) + "\n" + FVU_DEFINITION + "\n", encoding="utf-8")
