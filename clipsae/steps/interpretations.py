"""Step ``clean_interpretations``: one cleaned, scored EN + RU name per latent of one SAE."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from clipsae.activations.row_index import read_row_ids
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
from clipsae.interpret.vlm.config import VLMConfig
from clipsae.interpret.vlm.simulation import SIMULATION_COLUMNS, Simulation, plan_trials, simulate
from clipsae.models.clip import open_model
from clipsae.models.text import encode_texts
from clipsae.runtime.atomic import atomic_output, atomic_write_json
from clipsae.runtime.device import DeviceSpec, pick_device
from clipsae.sae import load_sae
from clipsae.steps.common import row_opener


def check_same_rows(layer_acts: Path, final_acts: Path) -> None:
    """Refuse codes and image embeddings of different images: every AUROC would be noise.

    Two extractions of one split skip the same bad images, so their row indices agree; this
    checks it rather than trusting it.
    """
    ids = [read_row_ids(d) for d in (layer_acts, final_acts)]
    if ids[0] != ids[1]:
        raise ValueError(
            f"{layer_acts} and {final_acts} list different images ({len(ids[0])} and "
            f"{len(ids[1])} rows): the SAE codes and the image embeddings must be of the same rows"
        )


@dataclass(frozen=True)
class SimulationInputs:
    """What the VLM simulation score needs besides the names and the codes: the VLM and its
    answer cache, how images are sampled, the dataset the test images are opened from, and
    where the per-latent scores go (``simulation.csv``)."""

    vlm: VLMConfig
    cache_dir: Path
    sampling: DetectionSampling
    dataset_name: str
    dataset_entry: dict
    index_dir: Path
    out_csv: Path


def simulate_names(
    table: pl.DataFrame,
    activations: np.ndarray,
    *,
    latents: list[int],
    layer_acts: Path,
    inputs: SimulationInputs,
) -> Simulation:
    """The VLM simulation score of the chosen names of ``latents`` (those with collages, which
    the VLM named): ``activations`` are the codes of the table's latents, in table order."""
    column = {latent: i for i, latent in enumerate(table["latent"])}
    label = dict(zip(table["latent"], table["label_en"], strict=True))
    open_row = row_opener(
        inputs.dataset_name, inputs.dataset_entry, Path(inputs.index_dir), Path(layer_acts)
    )
    trials, unscored = plan_trials(
        latents,
        [label[latent] for latent in latents],
        activations[:, [column[latent] for latent in latents]],
        open_row=open_row,
        sampling=inputs.sampling,
    )
    result = simulate(trials, unscored=unscored, config=inputs.vlm, cache_dir=inputs.cache_dir)
    with atomic_output(Path(inputs.out_csv)) as tmp:
        result.table.select(SIMULATION_COLUMNS).write_csv(tmp)
    return result


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
    simulation: SimulationInputs | None = None,
    device: DeviceSpec = "auto",
) -> None:
    """Write ``interpretations.csv`` and its summary JSON for one SAE.

    Names come from the vocabulary CSV, the VLM CSV and the manual CSV (either may be absent);
    each chosen label is scored on the test split: the SAE's codes on ``layer_acts`` say which
    images activate a latent, the ``final`` activations (CLIP image embeddings) of the same
    images are ranked by the label's text embedding. With ``simulation``, the names of the
    latents the VLM was asked about (the rows of ``vlm_csv``) also get the VLM simulation score,
    summarised under ``simulation`` in the summary JSON.
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
    summary = scored.summary
    if simulation is not None:
        vlm_names = read_optional_csv(vlm_csv)
        asked = [] if vlm_names is None else [int(lat) for lat in vlm_names["latent"]]
        result = simulate_names(
            scored.table, activations, latents=asked, layer_acts=Path(layer_acts), inputs=simulation
        )
        summary = {**summary, "simulation": result.summary}
    write_interpretations(scored.table, Path(out_csv))
    atomic_write_json(summary, Path(out_summary))
