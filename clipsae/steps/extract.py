"""Step ``extract_image``: one split of a dataset through one model layer to shards."""

from __future__ import annotations

from pathlib import Path

from clipsae.activations.extract import extract_activations
from clipsae.models.clip import open_model
from clipsae.steps.common import split_records


def extract(
    model: dict,
    weights: Path | None,
    dataset_name: str,
    dataset_entry: dict,
    index_dir: Path,
    split: str,
    layer: str,
    out_dir: Path,
    extraction: dict,
    device: str = "auto",
) -> None:
    clip = open_model(model, weights, device)
    dataset, records = split_records(dataset_name, dataset_entry, index_dir, split)
    extract_activations(
        clip,
        dataset,
        records,
        layer,
        Path(out_dir),
        batch_size=model.get("batch_size", 256),
        num_workers=extraction["num_workers"],
        dtype=extraction["dtype"],
        shard_rows=extraction["shard_rows"],
        extra={"dataset": dataset_name, "split": split, "pretrained": model["pretrained"]},
    )
