"""Step ``extract_image``: images through one model layer to activation shards."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clipsae.activations.extract import extract_activations
from clipsae.activations.shards import ShardMeta
from clipsae.data import ImageDataset, Record
from clipsae.models.architectures import DEFAULT_SEED
from clipsae.models.clip import open_model
from clipsae.runtime.device import DeviceSpec
from clipsae.steps.common import split_records


def extract(
    *,
    model: dict,
    weights: Path | None,
    dataset: ImageDataset,
    records: Sequence[Record],
    layer: str,
    out_dir: Path,
    extraction: dict,
    extra: dict,
    device: DeviceSpec = "auto",
) -> ShardMeta:
    """``records`` of ``dataset`` through ``layer`` of a ``models`` entry; the CLI calls this.

    ``extraction`` holds ``dtype``, ``shard_rows`` and ``num_workers``; ``extra`` goes into
    ``meta.json`` next to the model's provenance (its ``pretrained`` and, for random weights,
    its seed, so that train and validation shards of different random models are told apart).
    """
    clip = open_model(model, weights, device=device)
    provenance = {"pretrained": model["pretrained"]}
    if model["pretrained"] == "none":
        provenance["seed"] = model.get("seed", DEFAULT_SEED)
    return extract_activations(
        clip,
        dataset,
        records,
        layer,
        Path(out_dir),
        batch_size=model.get("batch_size", 256),
        num_workers=extraction["num_workers"],
        dtype=extraction["dtype"],
        shard_rows=extraction["shard_rows"],
        extra={**extra, **provenance},
    )


def extract_split(
    *,
    model: dict,
    weights: Path | None,
    dataset_name: str,
    dataset_entry: dict,
    index_dir: Path,
    split: str,
    layer: str,
    out_dir: Path,
    extraction: dict,
    device: DeviceSpec = "auto",
) -> ShardMeta:
    """One split of a prepared dataset (the workflow's rule)."""
    dataset, records = split_records(dataset_name, dataset_entry, index_dir, split)
    return extract(
        model=model,
        weights=weights,
        dataset=dataset,
        records=records,
        layer=layer,
        out_dir=out_dir,
        extraction=extraction,
        extra={"dataset": dataset_name, "split": split},
        device=device,
    )
