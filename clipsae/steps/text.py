"""Step ``embed_text``: class prompts and concept vocabularies through the text tower."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from clipsae.interpret.naming import load_bilingual_vocab
from clipsae.models.clip import open_model
from clipsae.models.text import DEFAULT_TEMPLATES, class_embeddings, encode_texts
from clipsae.runtime.atomic import atomic_output
from clipsae.runtime.device import DeviceSpec


def _save_embeddings(emb: np.ndarray, table: pl.DataFrame, out_npy: Path) -> None:
    with atomic_output(Path(out_npy).with_suffix(".parquet")) as tmp:
        table.write_parquet(tmp)
    with atomic_output(Path(out_npy)) as tmp:
        np.save(tmp, emb.astype(np.float32))


def embed_classes(
    *,
    model: dict,
    weights: Path | None,
    classes_json: Path,
    prompts: dict | None,
    out_npy: Path,
    device: DeviceSpec = "auto",
) -> None:
    """Prompt-ensembled class embeddings in label order (the zero-shot classifier).

    ``prompts`` (``Prompts.to_params``: ``templates`` and ``classes``, or None for the default
    templates) may carry a published ensemble's class names; they replace the dataset's own,
    label for label, so their number must match."""
    clip = open_model(model, weights, device=device)
    names = json.loads(Path(classes_json).read_text())["classes"]
    prompts = prompts or {"templates": DEFAULT_TEMPLATES, "classes": None}
    if prompts["classes"] is not None:
        if len(prompts["classes"]) != len(names):
            raise ValueError(
                f"the prompts' {len(prompts['classes'])} class names do not match the "
                f"{len(names)} classes of {classes_json}"
            )
        names = prompts["classes"]
    emb = class_embeddings(clip, names, prompts["templates"])
    _save_embeddings(emb, pl.DataFrame({"label": range(len(names)), "name": names}), out_npy)


def embed_vocab(
    *,
    model: dict,
    weights: Path | None,
    vocab_tsv: Path,
    out_npy: Path,
    device: DeviceSpec = "auto",
) -> None:
    """Embeddings of a bilingual vocabulary's English concepts (what latents are named by)."""
    clip = open_model(model, weights, device=device)
    vocab = load_bilingual_vocab(Path(vocab_tsv))
    _save_embeddings(encode_texts(clip, vocab["en"].to_list()), vocab, out_npy)
