"""Step ``steer``: amplify or ablate the latents the ground truth found, and measure the effect
on zero-shot predictions and retrieval (``clipsae.interpret.steering``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from clipsae.activations.shards import EVAL_BATCH, ActivationStore
from clipsae.interpret.steering import (
    DEFAULT_MULTIPLIERS,
    Forward,
    activation_percentiles,
    embedding_forwards,
    spliced_forwards,
    steer,
    sweep,
)
from clipsae.models.clip import open_model
from clipsae.runtime.atomic import atomic_output, atomic_write_json
from clipsae.runtime.device import pick_device
from clipsae.sae import load_sae
from clipsae.steps.common import row_attributes, split_records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplicedSource:
    """What a ``block{N}`` SAE needs to be steered: the model and the dataset's images."""

    model: dict
    weights: Path | None
    dataset_name: str
    dataset_entry: dict
    split: str = "test"


def detector_targets(
    ground_truth: Path, factor: str, class_names: Sequence[str]
) -> list[tuple[int, str]]:
    """(latent, value) of the SAE's detector of each class name among ``factor``'s values."""
    table = pl.read_parquet(ground_truth).filter(
        (pl.col("method") == "sae") & (pl.col("factor") == factor)
    )
    found = dict(zip(table["value"], table["latent"], strict=True))
    missing = [c for c in class_names if c not in found]
    if len(missing) == len(class_names):
        raise ValueError(
            f"{ground_truth}: no SAE detector of factor {factor!r} for any class "
            f"(classes {list(class_names)[:5]}..., values {sorted(found)[:5]}...)"
        )
    if missing:
        log.warning("%s: no detector of factor %r for classes %s", ground_truth, factor, missing)
    return [(found[c], c) for c in class_names if c in found]


def class_names_of(classes_npy: Path) -> list[str]:
    """Class names in label order, from the ``.parquet`` that ``embed_text`` writes beside."""
    return pl.read_parquet(Path(classes_npy).with_suffix(".parquet"))["name"].to_list()


def run_steering(
    *,
    sae_dir: Path,
    acts_dir: Path,
    classes_npy: Path,
    out_parquet: Path,
    out_json: Path,
    targets: Sequence[tuple[int, str]],
    factor: str | None = None,
    other_classes_npy: Path | None = None,
    index_dir: Path | None = None,
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
    percentile: float = 99.0,
    n_queries: int = 64,
    spliced: SplicedSource | None = None,
    device: str = "auto",
) -> dict:
    """Steer each (latent, target class name); write the per-setting table and its summary.

    The peak value of a latent is the ``percentile`` of its positive activations in
    ``acts_dir`` (the steered split, at the SAE's layer). With ``index_dir`` and ``factor``,
    retrieval is scored against the images' ``factor`` values and the neighbours are written
    beside the table (``<out>.neighbours.parquet``, image ids). ``spliced`` steers a
    ``block{N}`` SAE through the rest of the vision tower; without it the activations are the
    ``final`` embeddings.
    """
    dev = pick_device(device)
    sae = load_sae(Path(sae_dir), dev).eval()
    names = class_names_of(classes_npy)
    unknown = [value for _, value in targets if value not in names]
    if unknown:
        raise ValueError(f"targets {unknown} are not classes of {classes_npy} ({names})")
    resolved = [(latent, names.index(value), value) for latent, value in targets]
    peaks = activation_percentiles(
        sae.encode,
        ActivationStore(acts_dir).iter_batches(EVAL_BATCH),
        [latent for latent, _ in targets],
        percentile,
        dev,
    )
    forwards, rows = _forwards(Path(acts_dir), index_dir, spliced, dev)
    values = None
    if factor is not None and rows is not None:
        values = rows[factor].cast(pl.String).to_numpy()
    other = None if other_classes_npy is None else np.load(other_classes_npy)
    table, neighbours = steer(
        sae,
        sweep(resolved, peaks, multipliers),
        forwards,
        np.load(classes_npy),
        other_classes=other,
        row_values=values,
        n_queries=n_queries,
    )
    with atomic_output(Path(out_parquet)) as tmp:
        table.write_parquet(tmp)
    if values is not None:
        ids = rows["id"].to_numpy()
        neighbours = neighbours.with_columns(
            [pl.Series(c.replace("row", "id"), ids[neighbours[c].to_numpy()]) for c in _ROWS]
        ).drop(_ROWS)
        with atomic_output(Path(out_parquet).with_suffix(".neighbours.parquet")) as tmp:
            neighbours.write_parquet(tmp)
    summary = {"percentile": percentile, "settings": summarise_settings(table)}
    atomic_write_json(summary, Path(out_json))
    return summary


_ROWS = ("query_row", "row_before", "row_after")


def _forwards(
    acts_dir: Path, index_dir: Path | None, spliced: SplicedSource | None, dev: torch.device
) -> tuple[Iterator[Forward], pl.DataFrame | None]:
    """The batches to steer and the table their row numbers index (ids and attributes)."""
    if spliced is None:
        rows = row_attributes(acts_dir, index_dir) if index_dir is not None else None
        return embedding_forwards(ActivationStore(acts_dir).iter_batches(EVAL_BATCH), dev), rows
    if index_dir is None:
        raise ValueError("steering a block layer needs the prepared dataset (index_dir)")
    clip = open_model(spliced.model, spliced.weights, device=dev)
    dataset, records = split_records(
        spliced.dataset_name, spliced.dataset_entry, index_dir, spliced.split
    )
    rows = pl.DataFrame([{"id": r.id, **r.attrs} for r in records])
    layer = _layer_of(acts_dir)
    batch_size = spliced.model.get("batch_size", 256)
    return spliced_forwards(clip, dataset, records, layer, batch_size), rows


def _layer_of(acts_dir: Path) -> str:
    layer = ActivationStore(acts_dir).meta.extra.get("layer")
    if layer is None:
        raise ValueError(f"{acts_dir}: meta.json records no layer; cannot splice")
    return layer


def summarise_settings(table: pl.DataFrame) -> dict:
    """Per setting, the mean over latents of each rate: the figures a report quotes."""
    rates = [c for c in table.columns if c not in ("latent", "target", "setting", "value", "n")]
    grouped = table.group_by("setting", maintain_order=True).agg(
        pl.len().alias("n_latents"), *(pl.col(c).mean() for c in rates)
    )
    return {row.pop("setting"): row for row in grouped.iter_rows(named=True)}
