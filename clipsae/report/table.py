"""The results table: Parquet as the source of truth, Markdown for people."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from clipsae.report.runs import RunFiles
from clipsae.runtime.atomic import atomic_output

FVU_DEFINITION = (
    "FVU is dataset-level: sum ||x - x_hat||² / sum ||x - mean(x)||² over the test split, in the "
    "activations' original units; R² = 1 - FVU. L0 is the mean number of non-zero latents per "
    "image (SpLiCE: concepts per image). Dead % counts latents that never fire on the test split. "
    "One CLIP row per (dataset, model): zero-shot on the final embedding, probe on the final "
    "embedding. delta_accuracy is against CLIP on the same images; probe_accuracy is the linear "
    "probe's (fitted on CLIP at the row's layer); KL is from CLIP's class distribution to the "
    "row's."
)
# The columns users know from the SAE-on-CLIP papers (dataset | model | accuracy | notes |
# dict_size | L0 | MSE | L1 | R2Score), with what tells rows apart after model, and the extended
# metrics last; the Parquet file and the Markdown have the same columns in this order.
COLUMNS = [
    "dataset", "model", "variant", "layer", "sae", "arch", "train", "accuracy", "notes",
    "dict_size", "L0", "MSE", "L1", "R2Score", "FVU", "cosine", "dead_pct", "top5_accuracy",
    "delta_accuracy", "probe_accuracy", "KL",
]  # fmt: skip
# Rows sort by dataset, model, this order of variants, then layer, SAE and training dataset, so
# that two runs of different configs diff row by row.
VARIANTS = ("CLIP", "SpLiCE", "CLIP+SAE")
# Fixed formats per column: a value that changes changes in place, never in notation.
FORMATS = {
    "accuracy": "{:.4f}", "top5_accuracy": "{:.4f}", "delta_accuracy": "{:+.4f}",
    "probe_accuracy": "{:.4f}", "L0": "{:.2f}", "MSE": "{:.3e}", "L1": "{:.3f}",
    "R2Score": "{:.4f}", "FVU": "{:.4f}", "cosine": "{:.4f}", "dead_pct": "{:.2f}",
    "KL": "{:.3e}",
}  # fmt: skip
SCHEMA = {
    **dict.fromkeys(["dataset", "model", "variant", "layer", "sae", "arch", "train", "notes"],
                    pl.String),
    "dict_size": pl.Int64,
    **dict.fromkeys(["accuracy", "L0", "MSE", "L1", "R2Score", "FVU", "cosine", "dead_pct",
                     "top5_accuracy", "delta_accuracy", "probe_accuracy", "KL"], pl.Float64),
}  # fmt: skip


@dataclass(frozen=True)
class SpliceFile:
    """The SpLiCE baseline of one model on one dataset (``final``): its ``splice.json``."""

    model: str
    dataset: str
    path: Path


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


def _extras(run: RunFiles) -> dict:
    """The evaluation's ``extras.json``, or nothing where it was not handed over."""
    return read_json(run["extras"]) if "extras" in run.files else {}


def _sae_row(run: RunFiles) -> dict:
    """The CLIP+SAE row of one evaluation of a (model, layer, dataset, sae) run: ``dataset`` is
    the evaluation's, ``train`` the SAE's training dataset."""
    recon, zs, cfg = (read_json(run[role]) for role in ("recon", "zeroshot", "cfg"))
    probe = _extras(run).get("probe", {})
    r = run.run
    notes = [f"k={cfg['k']}" if cfg.get("k") is not None else None, f"{zs['method']} zero-shot"]
    if r.layer != "final" and "probe_accuracy_clip" in probe:
        notes.append(f"probe on CLIP {r.layer}: {probe['probe_accuracy_clip']:.4f}")
    return {
        "dataset": r.evalset or r.dataset,
        "model": r.model,
        "variant": "CLIP+SAE",
        "layer": r.layer,
        "sae": r.sae,
        "arch": cfg["arch"],
        "train": r.dataset,
        "accuracy": zs["accuracy_sae"],
        "notes": ", ".join(note for note in notes if note),
        "dict_size": cfg["d_sae"],
        "L0": recon["l0"],
        "MSE": recon["mse"],
        "L1": recon["l1"],
        "R2Score": recon["r2"],
        "FVU": recon["fvu"],
        "cosine": recon["cosine"],
        "dead_pct": 100.0 * recon["dead_frac"],
        "top5_accuracy": zs.get("top5_sae"),  # absent from files written before top-5
        "delta_accuracy": zs["delta_accuracy"],
        "probe_accuracy": probe.get("probe_accuracy_sae"),
        "KL": zs["kl_clip_to_sae"],
    }


def _clip_rows(runs: Sequence[RunFiles]) -> list[dict]:
    """One CLIP row per (evaluation dataset, model). CLIP's zero-shot is the same whichever run
    it was measured beside; the row takes it from a ``final`` evaluation where there is one
    (the linear probe, fitted on the layer's CLIP activations, is then the final embedding's)."""
    chosen: dict[tuple[str, str], RunFiles] = {}
    for run in runs:
        key = (run.run.evalset or run.run.dataset, run.run.model)
        if key not in chosen or (run.run.layer == "final" and chosen[key].run.layer != "final"):
            chosen[key] = run
    rows = []
    for (dataset, model), run in chosen.items():
        zs = read_json(run["zeroshot"])
        final = run.run.layer == "final"
        probe = _extras(run).get("probe", {}) if final else {}
        rows.append({
            "dataset": dataset, "model": model, "variant": "CLIP",
            "accuracy": zs["accuracy_clip"],
            "notes": f"zero-shot, {zs['n_classes']} classes, n={zs['n']}",
            "top5_accuracy": zs.get("top5_clip"),
            "probe_accuracy": probe.get("probe_accuracy_clip"),
        })  # fmt: skip
    return rows


def _splice_row(splice: SpliceFile) -> dict:
    result = read_json(splice.path)
    return {
        "dataset": splice.dataset,
        "model": splice.model,
        "variant": "SpLiCE",
        "layer": "final",
        "accuracy": result["accuracy_sae"],
        "notes": f"{result['n_concepts']} concepts, l1={result['l1']:g}, n={result['n']}",
        "dict_size": result["n_concepts"],
        "L0": result["l0"],
        "cosine": result["cosine"],
        "top5_accuracy": result.get("top5_sae"),
        "delta_accuracy": result["delta_accuracy"],
        "KL": result["kl_clip_to_sae"],
    }


def build_table(runs: Sequence[RunFiles], splice: Sequence[SpliceFile] = ()) -> pl.DataFrame:
    rows = [*_clip_rows(runs), *map(_splice_row, splice), *map(_sae_row, runs)]
    df = pl.DataFrame(
        [{column: row.get(column) for column in COLUMNS} for row in rows], schema=SCHEMA
    )
    rank = pl.col("variant").replace_strict(VARIANTS, list(range(len(VARIANTS))))
    keys = ["dataset", "model", rank, "layer", "sae", "train"]
    return df.sort(keys, nulls_last=False, maintain_order=True).select(COLUMNS)


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


def to_markdown(df: pl.DataFrame, formats: Mapping[str, str] = FORMATS) -> str:
    """``df`` as a Markdown table, each column in its fixed format (``FORMATS``), others as
    ``markdown_lines`` writes them."""
    rows = (
        [formats[c].format(v) if c in formats and _fmt(v) else v
         for c, v in zip(df.columns, row, strict=True)]
        for row in df.iter_rows()
    )  # fmt: skip
    return "\n".join(markdown_lines(df.columns, rows)) + "\n"


def results_table(
    *,
    runs: Sequence[RunFiles],
    out_parquet: Path,
    out_md: Path,
    splice: Sequence[SpliceFile] = (),
) -> None:
    """``runs``: one per evaluation, with roles ``recon``, ``zeroshot``, ``cfg`` and, for the
    probe, ``extras``; ``splice``: the SpLiCE baselines."""
    df = build_table(runs, splice)
    with atomic_output(Path(out_parquet)) as tmp:
        df.write_parquet(tmp)
    with atomic_output(Path(out_md)) as tmp:
        tmp.write_text(to_markdown(df) + "\n" + FVU_DEFINITION + "\n", encoding="utf-8")
