"""The clean_interpretations step on real files: activation shards, a saved SAE, CSVs, a CLIP."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from configs import detection_sampling
from vlm_server import Reply, VLMServer

from clipsae.activations.row_index import ROW_INDEX_FILE
from clipsae.activations.shards import ShardWriter
from clipsae.data import build_dataset, write_index
from clipsae.interpret.cleaning import INTERPRETATION_COLUMNS, has_cyrillic, read_csv_table
from clipsae.interpret.scoring import score_names
from clipsae.interpret.vlm import VLMConfig
from clipsae.models.clip import load_clip
from clipsae.models.text import encode_texts
from clipsae.sae import TopKConfig, build_sae, load_sae, save_sae
from clipsae.steps.interpretations import SimulationInputs, clean_and_score_names

D, D_SAE, N_ROWS = 128, 12, 400  # clipsae-tiny-vit embeds into 128 dimensions
NAMES = [("red", "красный"), ("blue", "синий"), ("green", "зелёный"), ("circle", "круг")]
MODEL = {"arch": "clipsae-tiny-vit", "pretrained": "none"}


def write_acts(directory, data: np.ndarray, ids: list[str]) -> None:
    writer = ShardWriter(directory, D, shard_rows=150)
    writer.add(data)
    writer.close()
    pl.DataFrame({"row": range(len(ids)), "id": ids, "label": [0] * len(ids)}).write_parquet(
        directory / ROW_INDEX_FILE
    )


@pytest.fixture
def inputs(tmp_path):
    final = np.random.default_rng(0).standard_normal((N_ROWS, D)).astype(np.float32)
    ids = [f"img{i}" for i in range(N_ROWS)]
    write_acts(tmp_path / "final", final, ids)
    sae = build_sae(TopKConfig(d_in=D, d_sae=D_SAE, k=3), torch.Generator().manual_seed(0))
    save_sae(sae, tmp_path / "sae")
    names = [NAMES[i % len(NAMES)] for i in range(D_SAE)]
    pl.DataFrame(
        {
            "latent": range(D_SAE),
            "label_en": [en for en, _ in names],
            "label_ru": [ru for _, ru in names],
            "score": [0.3] * D_SAE,
            "top_en": [en for en, _ in names],
            "top_ru": [ru for _, ru in names],
            "margin": [0.1] * D_SAE,
        }
    ).write_csv(tmp_path / "vocab.csv")
    (tmp_path / "vlm.csv").write_text(
        "latent,label_en,label_ru,description_en,description_ru,status\n"
        "1,```Blue Square```,синий квадрат,Blue squares.,Синие квадраты.,ok\n"
        "2,No clear pattern,Нет чёткого паттерна,,,ok\n",
        encoding="utf-8",
    )
    return tmp_path, final


def run_step(tmp_path, sampling, layer_acts=None, final_acts=None, simulation=None):
    torch.manual_seed(0)  # the same random CLIP as the reference below
    clean_and_score_names(
        vocab_csv=tmp_path / "vocab.csv",
        vlm_csv=tmp_path / "vlm.csv",
        manual_csv=tmp_path / "no_manual.csv",
        bilingual_tsv=None,
        sae_dir=tmp_path / "sae",
        layer_acts=layer_acts or tmp_path / "final",
        final_acts=final_acts or tmp_path / "final",
        model=MODEL,
        weights=None,
        out_csv=tmp_path / "interpretations.csv",
        out_summary=tmp_path / "summary.json",
        sampling=sampling,
        simulation=simulation,
        device="cpu",
    )


def test_step_writes_scored_interpretations_and_summary(inputs) -> None:
    tmp_path, final = inputs
    sampling = detection_sampling(per_quantile=5, n_negative=50, seed=2)
    run_step(tmp_path, sampling)
    table = read_csv_table(tmp_path / "interpretations.csv")
    assert tuple(table.columns) == INTERPRETATION_COLUMNS
    assert table["source"].to_list() == ["vocab", "vlm", *["vocab"] * (D_SAE - 2)]
    assert table["label_en"][1] == "blue square"
    assert table["flags"][2] == "vlm_no_pattern"
    assert all(has_cyrillic(ru) for ru in table["label_ru"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["by_flag"] == {"vlm_no_pattern": 1}
    assert summary["agreement"]["n"] == 1
    # the scores are those of the chosen labels against the same codes and embeddings
    torch.manual_seed(0)
    clip = load_clip("clipsae-tiny-vit", "none", device="cpu")
    with torch.inference_mode():
        codes = load_sae(tmp_path / "sae").encode(torch.from_numpy(final)).numpy()
    expected = score_names(
        latents=list(range(D_SAE)),
        name_embeddings=encode_texts(clip, table["label_en"].to_list()),
        activations=codes,
        image_embeddings=final,
        sampling=sampling,
    )
    got = table["score"].cast(pl.Float64).to_numpy()
    want = expected.per_latent["auroc"].to_numpy().astype(np.float64)
    np.testing.assert_allclose(got, want, equal_nan=True, atol=1e-6)
    assert summary["detection"]["n_scored"] == expected.n_scored > 0
    assert summary["detection"]["median_auroc"] == pytest.approx(expected.median_auroc)


def test_step_refuses_codes_and_embeddings_of_different_images(inputs) -> None:
    tmp_path, final = inputs
    write_acts(tmp_path / "other", final, [f"other{i}" for i in range(N_ROWS)])
    with pytest.raises(ValueError, match="list different images"):
        run_step(tmp_path, detection_sampling(), layer_acts=tmp_path / "other")
    assert not (tmp_path / "interpretations.csv").exists()


def test_step_scores_the_vlm_named_latents_by_simulation(inputs, monkeypatch) -> None:
    """A VLM that never sees the name (answers []) scores 1 - base rate in accuracy, 0 in F1."""
    tmp_path, final = inputs
    entry = {"source": "synthetic", "n_train": 0, "n_test": N_ROWS, "seed": 1}
    dataset = build_dataset("shapes", entry)
    write_index(dataset, tmp_path / "data")
    ids = [record.id for record in dataset.records()]
    write_acts(tmp_path / "acts", final, ids)  # codes and embeddings of the dataset's images
    monkeypatch.setenv("CLIPSAE_TEST_VLM_KEY", "sk-test")
    with VLMServer() as server:
        server.script = [Reply(content="None of them:\n```json\n[]\n```")] * 2
        simulation = SimulationInputs(
            vlm=VLMConfig(base_url=server.base_url, api_key_env="CLIPSAE_TEST_VLM_KEY",
                          backoff_factor=0.01, concurrency=1),
            cache_dir=tmp_path / "cache",
            sampling=detection_sampling(n_quantiles=2, per_quantile=2, n_negative=4),
            dataset_name="shapes",
            dataset_entry=entry,
            index_dir=tmp_path / "data",
            out_csv=tmp_path / "simulation.csv",
        )  # fmt: skip
        run_step(tmp_path, detection_sampling(), layer_acts=tmp_path / "acts",
                 final_acts=tmp_path / "acts", simulation=simulation)  # fmt: skip
        assert server.count == 2
    table = pl.read_csv(tmp_path / "simulation.csv")
    assert table["latent"].to_list() == [1, 2], "the latents of vlm.csv"
    assert table["status"].to_list() == ["ok", "ok"]
    assert table["label_en"].to_list() == ["blue square", "green"]
    shown = table["n_positive"] + table["n_negative"]
    np.testing.assert_allclose(table["accuracy"], table["n_negative"] / shown)
    assert table["f1"].to_list() == [0.0, 0.0]
    summary = json.loads((tmp_path / "summary.json").read_text())["simulation"]
    assert summary["requests"] == 2 and summary["counts"] == {"ok": 2}
