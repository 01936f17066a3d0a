"""Step ``clean_interpretations``: one cleaned, scored EN + RU name per latent of one SAE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from clipsae.activations.extract import ROW_INDEX_FILE
from clipsae.activations.shards import EVAL_BATCH, ActivationStore
from clipsae.interpret.cleaning import (
    clean_interpretations,
    read_csv_table,
    read_optional_csv,
    score_interpretations,
    write_interpretations,
)
from clipsae.interpret.naming import load_bilingual_vocab
from clipsae.interpret.scoring import DetectionSampling, latent_activations
from clipsae.models.clip import open_model
from clipsae.models.text import encode_texts
from clipsae.runtime.atomic import atomic_write_json
from clipsae.runtime.device import DeviceSpec, pick_device
from clipsae.sae import load_sae


def check_same_rows(layer_acts: Path, final_acts: Path) -> None:
    """Refuse codes and image embeddings of different images: every AUROC would be noise.

    Two extractions of one split skip the same bad images, so their row indices agree; this
    checks it rather than trusting it.
    """
    ids = [pl.read_parquet(Path(d) / ROW_INDEX_FILE)["id"] for d in (layer_acts, final_acts)]
    if not ids[0].equals(ids[1]):
        raise ValueError(
            f"{layer_acts} and {final_acts} list different images ({len(ids[0])} and "
            f"{len(ids[1])} rows): the SAE codes and the image embeddings must be of the same rows"
        )


def clean_and_score_names(
    *,
    vocab_csv: Path,
    vlm_csv: Path | None,
    manual_csv: Path | None,
    bilingual_tsv: Path | None,
    sae_dir: Path,
    layer_acts: Path,
    final_acts: Path,
    model: dict,
    weights: Path | None,
    out_csv: Path,
    out_summary: Path,
    sampling: DetectionSampling,
    device: DeviceSpec = "auto",
) -> None:
    """Write ``interpretations.csv`` and its summary JSON for one SAE.

    Names come from the vocabulary CSV, the VLM CSV and the manual CSV (either may be absent);
    each chosen label is scored on the test split: the SAE's codes on ``layer_acts`` say which
    images activate a latent, the ``final`` activations (CLIP image embeddings) of the same
    images are ranked by the label's text embedding.
    """
    check_same_rows(Path(layer_acts), Path(final_acts))
    torch_device = pick_device(device)
    clip = open_model(model, weights, device=torch_device)

    def embed(texts: list[str]) -> np.ndarray:
        return encode_texts(clip, texts)

    interpretations = clean_interpretations(
        vocab_names=read_csv_table(Path(vocab_csv)),
        vlm_names=read_optional_csv(vlm_csv),
        manual=read_optional_csv(manual_csv),
        bilingual=load_bilingual_vocab(Path(bilingual_tsv)) if bilingual_tsv else None,
        embed=embed,
    )
    sae = load_sae(Path(sae_dir), torch_device).eval()
    activations = latent_activations(
        sae.encode,
        ActivationStore(Path(layer_acts)).iter_batches(EVAL_BATCH),
        latents=interpretations.table["latent"].to_list(),
        device=torch_device,
    )
    scored = score_interpretations(
        interpretations,
        embed=embed,
        activations=activations,
        image_embeddings=ActivationStore(Path(final_acts)).load_all(),
        sampling=sampling,
    )
    write_interpretations(scored.table, Path(out_csv))
    atomic_write_json(scored.summary, Path(out_summary))
