"""Step ``ground_truth``: SAE latents, raw CLIP dimensions and random directions as detectors
of the factors that generated the images (``clipsae.interpret.ground_truth``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from clipsae.activations.shards import EVAL_BATCH, ActivationStore
from clipsae.interpret.ground_truth import (
    Factors,
    ground_truth,
    mean_activation,
    projection_encoder,
    random_directions,
    raw_directions,
)
from clipsae.interpret.naming import name_latents
from clipsae.runtime.atomic import atomic_output, atomic_write_json
from clipsae.runtime.device import pick_device
from clipsae.sae import load_sae
from clipsae.steps.common import attribute_columns, row_attributes


def _batches(acts_dir: Path):
    return lambda: ActivationStore(acts_dir).iter_batches(EVAL_BATCH)


def _split_factors(
    train_acts: Path, test_acts: Path, index_dir: Path, factors: Sequence[str] | None
) -> tuple[Factors, Factors]:
    train_rows = row_attributes(train_acts, index_dir)
    chosen = list(factors) if factors else attribute_columns(train_rows)
    if not chosen:
        raise ValueError(f"{index_dir}: the index has no attribute columns to check latents on")
    train = Factors.from_frame(train_rows, chosen)
    return train, Factors.from_frame(row_attributes(test_acts, index_dir), chosen, train.values)


def run_ground_truth(
    *,
    sae_dir: Path,
    train_acts: Path,
    test_acts: Path,
    index_dir: Path,
    out_parquet: Path,
    out_json: Path,
    layer: str = "final",
    names_csv: Path | None = None,
    vocab_npy: Path | None = None,
    factors: Sequence[str] | None = None,
    seed: int = 0,
    top_n: int = 3,
    center: bool = True,
    device: str = "auto",
) -> dict:
    """Write the detector table (one row per method, factor, value) and the summary JSON.

    ``names_csv`` (the SAE's ``vocab.csv``) names the SAE's detectors; ``vocab_npy`` (an
    embedded vocabulary) names the baselines' directions the same way. Only ``final``
    directions live in the text embeddings' space, so baselines at a block are left unnamed.
    ``factors`` default to every string attribute of the index.
    """
    if vocab_npy is not None and layer != "final":
        raise ValueError(f"layer {layer!r}: baseline directions can only be named at 'final'")
    dev = pick_device(device)
    sae = load_sae(Path(sae_dir), dev).eval()
    train, test = _batches(Path(train_acts)), _batches(Path(test_acts))
    factors_train, factors_test = _split_factors(
        Path(train_acts), Path(test_acts), Path(index_dir), factors
    )
    mean = mean_activation(train())
    baselines = {
        "clip": raw_directions(len(mean)),
        "random": random_directions(sae.cfg.d_sae, len(mean), seed),
    }
    methods = {"sae": lambda x: sae.encode(x.to(dev))}
    methods |= {name: projection_encoder(dirs, mean) for name, dirs in baselines.items()}
    names = {}
    if names_csv is not None:
        names["sae"] = pl.read_csv(names_csv)
    if vocab_npy is not None:
        vocab = pl.read_parquet(Path(vocab_npy).with_suffix(".parquet"))
        embeddings = np.load(vocab_npy)
        for name, dirs in baselines.items():
            names[name] = name_latents(dirs.numpy(), embeddings, vocab, top_n=top_n, center=center)
    table, summary = ground_truth(methods, train, test, factors_train, factors_test, names=names)
    summary |= {"layer": layer, "seed": seed, "factors": list(factors_train.names)}
    with atomic_output(Path(out_parquet)) as tmp:
        table.write_parquet(tmp)
    atomic_write_json(summary, Path(out_json))
    return summary
