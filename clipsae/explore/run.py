"""One trained run's files under ``results/`` and the objects they load into.

A run is (model, layer, dataset, SAE), the wildcards of the workflow's paths
(``docs/architecture.md``). The CLIP that made the activations is named in their ``meta.json``
(``arch`` and ``pretrained``, with a built model's weights under ``models/``), so exploring a run
needs no workflow config; only opening a dataset's images by id does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image

from clipsae.activations.shards import ActivationStore, ShardMeta, batches_of
from clipsae.config.validate import dataset_entry_from_file
from clipsae.data import Record, build_dataset, read_index
from clipsae.data.images import load_rgb
from clipsae.models.clip import LoadedClip, open_model
from clipsae.models.weights import built_weights
from clipsae.sae import SAE

log = logging.getLogger(__name__)

# In order of preference: the cleaned interpretations, then the vocabulary names.
NAMES_FILES = ("interpretations.csv", "vocab.csv")
NAME_COLUMNS = ("latent", "label_en", "label_ru")


@dataclass(frozen=True)
class Run:
    """Where the workflow put one (model, layer, dataset, SAE) under ``results``."""

    results: Path
    model: str
    layer: str
    dataset: str
    sae: str

    @property
    def _key(self) -> Path:
        return Path(self.model, self.layer, self.dataset, self.sae)

    @property
    def sae_dir(self) -> Path:
        return self.results / "sae" / self._key

    @property
    def features_dir(self) -> Path:
        return self.results / "features" / self._key

    @property
    def index_dir(self) -> Path:
        return self.results / "data" / self.dataset

    def activations(self, split: str = "test") -> Path:
        return self.results / "activations" / self.model / self.dataset / split / self.layer

    def names_file(self) -> Path | None:
        """``interpretations.csv`` if the run has one, else ``vocab.csv``, else ``None``."""
        folder = self.results / "interpret" / self._key
        return next((folder / n for n in NAMES_FILES if (folder / n).is_file()), None)

    def model_entry(self, split: str = "test") -> tuple[dict, Path | None]:
        """The ``models`` entry (``arch``, ``pretrained``, the ``seed`` of random weights) the
        activations were made with, and the built weights for ``pretrained: build``."""
        meta = ShardMeta.read(self.activations(split))
        missing = [key for key in ("arch", "pretrained") if key not in meta.extra]
        if missing:
            raise ValueError(f"{self.activations(split)}/meta.json does not record {missing}")
        entry = {"arch": meta.extra["arch"], "pretrained": meta.extra["pretrained"]}
        if entry["pretrained"] == "none" and "seed" in meta.extra:
            entry["seed"] = meta.extra["seed"]
        elif entry["pretrained"] == "none":  # extracted before random weights were seeded
            log.warning("%s has unseeded random weights: a new load differs", self.model)
        weights = built_weights(self.results / "models", self.model)
        return entry, weights if entry["pretrained"] == "build" else None

    def open_clip(self, device: str = "auto", split: str = "test") -> LoadedClip:
        entry, weights = self.model_entry(split)
        return open_model(entry, weights, device=device)


def read_names(path: Path) -> pl.DataFrame:
    """``latent, label_en, label_ru`` of a names CSV: ``vocab.csv`` or ``interpretations.csv``."""
    frame = pl.read_csv(path, infer_schema_length=0)  # all strings; labels like "1" stay text
    missing = [c for c in NAME_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {list(NAME_COLUMNS)}")
    return frame.select(pl.col("latent").cast(pl.Int64), "label_en", "label_ru")


def records_by_id(run: Run) -> dict[str, Record]:
    records, _ = read_index(run.index_dir)
    return {record.id: record for record in records}


def query_image(query: str, run: Run, config: Path | None) -> Image.Image:
    """The image a command was asked about: a file, or the id of an image of the run's dataset.

    Ids work for every source, generated ones included, but need the dataset's entry from the
    workflow ``config`` to open the image.
    """
    if Path(query).is_file():
        return load_rgb(query)
    record = records_by_id(run).get(query)
    if record is None:
        raise ValueError(
            f"{query!r} is neither an image file nor an image id of dataset {run.dataset!r} "
            f"({run.index_dir / 'index.parquet'})"
        )
    if config is None:
        raise ValueError(f"opening image {query!r} of dataset {run.dataset!r} needs --config")
    dataset = build_dataset(run.dataset, dataset_entry_from_file(config, run.dataset))
    return dataset.open_image(record)


@torch.inference_mode()
def encode(sae: SAE, activations: np.ndarray) -> np.ndarray:
    """SAE codes (n, d_sae) of activations (n, d_in), on the SAE's device, as float32."""
    device = next(sae.parameters()).device
    x = torch.as_tensor(np.asarray(activations, dtype=np.float32), device=device)
    return sae.encode(x).float().cpu().numpy()


def split_codes(sae: SAE, store: ActivationStore) -> np.ndarray:
    """Codes of every row of an activation store, encoded in batches."""
    return np.concatenate([encode(sae, batch) for batch in batches_of(store)])
