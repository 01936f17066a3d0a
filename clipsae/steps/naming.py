"""Step ``name_by_vocab``: each latent named by its nearest concepts of a vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from clipsae.interpret.naming import name_latents, write_names_csv
from clipsae.models.architectures import parse_layer
from clipsae.models.clip import open_model
from clipsae.sae import load_sae


def concept_directions(
    *, sae_dir: Path, layer: str, model: dict, weights: Path | None
) -> np.ndarray:
    """Decoder directions in CLIP's joint embedding space, where the text embeddings live.

    ``final`` directions already are. For ``block{N}`` they are carried through the vision
    tower's output head: the ``ln_post`` gain and the projection (LayerNorm's centring and
    scaling are left out, so this is a first-order map, like a logit lens). One matrix product
    on at most d_sae x width numbers: the CPU does it, whatever the workflow's device.
    """
    w_dec = load_sae(Path(sae_dir)).W_dec.detach()
    if parse_layer(layer, model["arch"]) is None:
        return w_dec.numpy()
    visual = open_model(model, weights, device="cpu").model.visual
    with torch.no_grad():
        return ((w_dec * visual.ln_post.weight) @ visual.proj).numpy()


def name_by_vocab(
    *,
    sae_dir: Path,
    vocab_npy: Path,
    layer: str,
    model: dict,
    weights: Path | None,
    out_csv: Path,
    top_n: int,
    center: bool,
) -> None:
    directions = concept_directions(
        sae_dir=Path(sae_dir), layer=layer, model=model, weights=weights
    )
    name_directions(
        directions, vocab_npy=Path(vocab_npy), out_csv=Path(out_csv), top_n=top_n, center=center
    )


def name_directions(
    directions: np.ndarray, *, vocab_npy: Path, out_csv: Path, top_n: int, center: bool
) -> None:
    """Name each direction by its nearest concepts in an embedded vocabulary (``embed_vocab``)."""
    vocab = pl.read_parquet(Path(vocab_npy).with_suffix(".parquet"))
    names = name_latents(directions, np.load(vocab_npy), vocab, top_n=top_n, center=center)
    write_names_csv(names, Path(out_csv))
