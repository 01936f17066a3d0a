"""One function per pipeline step, taking paths and config entries.

The Snakemake scripts and the ``clipsae`` subcommands both call these, so a step behaves the
same inside and outside the workflow.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import torch

from clipsae.atomic import atomic_output, atomic_write_json
from clipsae.clip import parse_layer
from clipsae.collage import default_titles, select_latents, write_collages
from clipsae.config import dataset_source_spec
from clipsae.datasets import ImageDataset, Record, build_dataset, read_index, write_index
from clipsae.device import pick_device
from clipsae.embedded import BuildConfig, build_embedded_clip
from clipsae.experiment import open_model, sae_configs
from clipsae.extract import extract_activations, read_row_labels
from clipsae.features import latent_stats_and_top, write_features
from clipsae.metrics import reconstruction_metrics
from clipsae.naming import load_bilingual_vocab, name_latents, write_names_csv
from clipsae.sae import load_sae, train_sae
from clipsae.shards import ActivationStore, load_activations
from clipsae.text import DEFAULT_TEMPLATES, class_embeddings, encode_texts
from clipsae.zeroshot import zeroshot_on_embeddings, zeroshot_spliced

log = logging.getLogger(__name__)
EVAL_BATCH = 4096


def prepare(name: str, entry: dict, out_dir: Path) -> None:
    write_index(build_dataset(name, dataset_source_spec(entry)), Path(out_dir))


def build_model(arch: str, build: dict, out_dir: Path, device: str = "auto") -> None:
    build_embedded_clip(arch, Path(out_dir), BuildConfig(**build), device)


def _split_records(
    name: str, entry: dict, index_dir: Path, split: str
) -> tuple[ImageDataset, list[Record]]:
    dataset = build_dataset(name, dataset_source_spec(entry))
    records, _ = read_index(Path(index_dir))
    chosen = [r for r in records if r.split == split]
    if not chosen:
        raise ValueError(f"dataset {name!r} has no images in split {split!r}")
    return dataset, chosen


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
    dataset, records = _split_records(dataset_name, dataset_entry, index_dir, split)
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


def _save_embeddings(emb: np.ndarray, table: pl.DataFrame, out_npy: Path) -> None:
    with atomic_output(Path(out_npy).with_suffix(".parquet")) as tmp:
        table.write_parquet(tmp)
    with atomic_output(Path(out_npy)) as tmp:
        np.save(tmp, emb.astype(np.float32))


def embed_classes(
    model: dict,
    weights: Path | None,
    classes_json: Path,
    templates: list[str] | None,
    out_npy: Path,
) -> None:
    clip = open_model(model, weights)
    names = json.loads(Path(classes_json).read_text())["classes"]
    emb = class_embeddings(clip, names, templates or DEFAULT_TEMPLATES)
    _save_embeddings(emb, pl.DataFrame({"label": range(len(names)), "name": names}), out_npy)


def embed_vocab(model: dict, weights: Path | None, vocab_tsv: Path, out_npy: Path) -> None:
    clip = open_model(model, weights)
    vocab = load_bilingual_vocab(Path(vocab_tsv))
    _save_embeddings(encode_texts(clip, vocab["en"].to_list()), vocab, out_npy)


def open_activations(path: Path) -> ActivationStore | np.ndarray:
    """A shard directory streams (the trainer loads it if it fits); a ``.npy`` loads at once."""
    path = Path(path)
    return ActivationStore(path) if path.is_dir() else load_activations(path)


def batches_of(data: ActivationStore | np.ndarray, size: int = EVAL_BATCH) -> Iterator[np.ndarray]:
    if isinstance(data, ActivationStore):
        return data.iter_batches(size)
    return (data[i : i + size] for i in range(0, len(data), size))


def train(
    entry: dict,
    train_path: Path,
    val_path: Path | None,
    out_dir: Path,
    extra: dict,
    device: str | None = "auto",
) -> dict:
    """Train the SAE of a config ``saes`` entry; metrics.json is measured on the validation rows
    when given, else on the training rows (and says which)."""
    train_data = open_activations(train_path)
    val_data = open_activations(val_path) if val_path is not None else None
    d_in = train_data.d if isinstance(train_data, ActivationStore) else train_data.shape[1]
    cfg, tcfg = sae_configs(entry, d_in)
    summary = train_sae(
        train_data, cfg, tcfg, Path(out_dir), val=val_data, device=device, extra=extra
    )
    sae = load_sae(Path(out_dir), pick_device(device))
    evaluated = val_data if val_data is not None else train_data
    metrics = {
        **reconstruction_metrics(sae, batches_of(evaluated)),
        "evaluated_on": "val" if val_data is not None else "train",
        **summary,
    }
    atomic_write_json(metrics, Path(out_dir) / "metrics.json")
    return metrics


def eval_reconstruction(
    sae_dir: Path, acts_dir: Path, out_json: Path, device: str = "auto"
) -> None:
    sae = load_sae(Path(sae_dir), pick_device(device))
    metrics = reconstruction_metrics(sae, ActivationStore(acts_dir).iter_batches(EVAL_BATCH))
    atomic_write_json(metrics, Path(out_json))


def labelled_batches(acts_dir: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(activations, labels) batches of an extraction, in row order."""
    labels = read_row_labels(acts_dir)
    start = 0
    for batch in ActivationStore(acts_dir).iter_batches(EVAL_BATCH):
        yield batch, labels[start : start + len(batch)]
        start += len(batch)


def eval_zeroshot(
    sae_dir: Path,
    acts_dir: Path,
    classes_npy: Path,
    layer: str,
    model: dict,
    weights: Path | None,
    dataset_name: str,
    dataset_entry: dict,
    index_dir: Path,
    out_json: Path,
    device: str = "auto",
) -> None:
    """Embedding layer: from stored activations. Inner layers: spliced forward over the images."""
    dev = pick_device(device)
    sae = load_sae(Path(sae_dir), dev).eval()
    classes = np.load(classes_npy)
    if parse_layer(layer, model["arch"]) is None:
        result = zeroshot_on_embeddings(labelled_batches(Path(acts_dir)), classes, sae, dev)
    else:
        clip = open_model(model, weights, device)
        dataset, records = _split_records(dataset_name, dataset_entry, index_dir, "test")
        result = zeroshot_spliced(
            clip,
            dataset,
            records,
            layer,
            classes,
            sae.to(clip.device),
            model.get("batch_size", 256),
        )
    atomic_write_json(result, Path(out_json))


def encode_features(
    sae_dir: Path, acts_dir: Path, out_dir: Path, top_k: int, device: str = "auto"
) -> None:
    sae = load_sae(Path(sae_dir), pick_device(device)).eval()
    batches = ActivationStore(acts_dir).iter_batches(EVAL_BATCH)
    stats, top = latent_stats_and_top(sae.encode, batches, sae.cfg.d_sae, top_k)
    write_features(stats, top, Path(out_dir))


def collages(
    features_dir: Path,
    acts_dir: Path,
    dataset_name: str,
    dataset_entry: dict,
    index_dir: Path,
    out_dir: Path,
    n_latents: int,
    tile: int,
) -> None:
    stats = pl.read_parquet(Path(features_dir) / "stats.parquet")
    top = pl.read_parquet(Path(features_dir) / "top_images.parquet")
    dataset = build_dataset(dataset_name, dataset_source_spec(dataset_entry))
    records, _ = read_index(Path(index_dir))
    by_id = {r.id: r for r in records}
    row_ids = pl.read_parquet(Path(acts_dir) / "index.parquet")["id"].to_list()
    latents = select_latents(stats, n_latents)
    write_collages(
        top,
        latents,
        lambda row: dataset.open_image(by_id[row_ids[row]]),
        Path(out_dir),
        default_titles(stats),
        tile=tile,
    )


def concept_directions(sae_dir: Path, layer: str, model: dict, weights: Path | None) -> np.ndarray:
    """Decoder directions in CLIP's joint embedding space, where the text embeddings live.

    ``final`` directions already are. For ``block{N}`` they are carried through the vision
    tower's output head: the ``ln_post`` gain and the projection (LayerNorm's centring and
    scaling are left out, so this is a first-order map, like a logit lens).
    """
    w_dec = load_sae(Path(sae_dir)).W_dec.detach()
    if parse_layer(layer, model["arch"]) is None:
        return w_dec.numpy()
    visual = open_model(model, weights, "cpu").model.visual
    with torch.no_grad():
        return ((w_dec * visual.ln_post.weight) @ visual.proj).numpy()


def name_by_vocab(
    sae_dir: Path,
    vocab_npy: Path,
    layer: str,
    model: dict,
    weights: Path | None,
    out_csv: Path,
    top_n: int,
    center: bool,
) -> None:
    directions = concept_directions(Path(sae_dir), layer, model, weights)
    name_directions(directions, Path(vocab_npy), Path(out_csv), top_n, center)


def name_directions(
    directions: np.ndarray, vocab_npy: Path, out_csv: Path, top_n: int, center: bool
) -> None:
    """Name each direction by its nearest concepts in an embedded vocabulary (``embed_vocab``)."""
    vocab = pl.read_parquet(Path(vocab_npy).with_suffix(".parquet"))
    names = name_latents(directions, np.load(vocab_npy), vocab, top_n=top_n, center=center)
    write_names_csv(names, Path(out_csv))
