"""The eval_extras step on stored activations: probe, error baselines and sweep together."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from saes import identity_sae

from clipsae.activations.row_index import ROW_INDEX_FILE
from clipsae.activations.shards import ShardWriter
from clipsae.sae.io import save_sae
from clipsae.steps.extras import eval_extras

D, N_CLASSES = 16, 3


def write_split(directory, rng, n: int, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, N_CLASSES, size=n)
    rows = (centres[labels] + 0.3 * rng.normal(size=(n, D))).astype(np.float32)
    writer = ShardWriter(directory, D, shard_rows=50)
    writer.add(rows)
    writer.close()
    pl.DataFrame(
        {"row": range(n), "id": [str(i) for i in range(n)], "label": labels}
    ).write_parquet(directory / ROW_INDEX_FILE)
    return rows, labels


def test_an_identity_sae_changes_no_prediction_and_the_baselines_are_the_ablations(tmp_path):
    rng = np.random.default_rng(0)
    centres = 2.0 * rng.normal(size=(N_CLASSES, D))
    train_rows, _ = write_split(tmp_path / "train", rng, 300, centres)
    _, labels = write_split(tmp_path / "test", rng, 120, centres)
    classes = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    np.save(tmp_path / "classes.npy", classes.astype(np.float32))
    save_sae(identity_sae(D), tmp_path / "sae")

    got = eval_extras(sae_dir=tmp_path / "sae", train_acts=tmp_path / "train",
                      test_acts=tmp_path / "test", classes_npy=tmp_path / "classes.npy",
                      layer="final", out_json=tmp_path / "extras.json", probe_rows=200,
                      device="cpu")  # fmt: skip

    probe = got["probe"]
    assert got["probe_rows"] == 200 and probe["n_test"] == 120
    assert probe["probe_agreement"] == 1.0 and probe["probe_delta_accuracy"] == 0.0
    assert probe["probe_kl_clip_to_sae"] == pytest.approx(0.0, abs=1e-9)
    assert probe["probe_accuracy_clip"] > 0.9  # well-separated clusters
    # Error only: an exact reconstruction leaves a zero error, which scores every class 0, so the
    # first class wins every row; mean ablated: every row gets the mean's class.
    base = got["baselines"]
    assert base["error_only"]["accuracy_sae"] == pytest.approx(float((labels == 0).mean()))
    mean_class = int(np.argmax(classes @ train_rows.mean(axis=0)))
    assert base["mean_ablated"]["accuracy_sae"] == pytest.approx(
        float((labels == mean_class).mean())
    )
    # The sweep: exact from the trained k (d) on, lossy below it.
    fvu = {point["k"]: point["fvu"] for point in got["sweep"]}
    assert sorted(fvu) == [8, 16, 32]
    assert fvu[16] == pytest.approx(0.0, abs=1e-6) and fvu[32] == pytest.approx(0.0, abs=1e-6)
    assert fvu[8] > 0.1


def test_an_inner_layer_says_why_it_has_no_baselines(tmp_path):
    rng = np.random.default_rng(1)
    centres = 2.0 * rng.normal(size=(N_CLASSES, D))
    for split, n in (("train", 60), ("test", 30)):
        write_split(tmp_path / split, rng, n, centres)
    np.save(tmp_path / "classes.npy", np.eye(N_CLASSES, D, dtype=np.float32))
    save_sae(identity_sae(D), tmp_path / "sae")
    got = eval_extras(sae_dir=tmp_path / "sae", train_acts=tmp_path / "train",
                      test_acts=tmp_path / "test", classes_npy=tmp_path / "classes.npy",
                      layer="block2", out_json=tmp_path / "extras.json", device="cpu")  # fmt: skip
    assert "baselines" not in got and got["baselines_skipped"].startswith("block2: ")
    assert got["probe_rows"] == 60


def test_monosemanticity_scores_a_seeded_subset_of_latents_and_layer_dimensions(tmp_path):
    from clipsae.evaluate.monosemanticity import image_subset, sae_vs_clip_monosemanticity

    rng = np.random.default_rng(2)
    centres = 2.0 * rng.normal(size=(N_CLASSES, D))
    write_split(tmp_path / "train", rng, 40, centres)
    test_rows, _ = write_split(tmp_path / "test", rng, 90, centres)
    # The final embeddings of the same test images (another layer, same ids, row for row).
    final, _ = write_split(tmp_path / "final", rng, 90, centres)
    np.save(tmp_path / "classes.npy", np.eye(N_CLASSES, D, dtype=np.float32))
    sae = identity_sae(D)
    save_sae(sae, tmp_path / "sae")
    kwargs = dict(sae_dir=tmp_path / "sae", train_acts=tmp_path / "train",
                  test_acts=tmp_path / "test", classes_npy=tmp_path / "classes.npy",
                  layer="block2", out_json=tmp_path / "extras.json", device="cpu")  # fmt: skip
    assert "monosemanticity" not in eval_extras(**kwargs)
    got = eval_extras(**kwargs, embeddings=tmp_path / "final",
                      monosemanticity_settings={"max_images": 50, "seed": 3})  # fmt: skip
    ms = got["monosemanticity"]
    subset = image_subset(90, 50, 3)
    expected = sae_vs_clip_monosemanticity(
        sae=sae, activations=test_rows[subset], embeddings=final[subset]
    )
    assert ms == {**expected, "seed": 3, "similarity": "final"}
    assert ms["n_images"] == 50 and ms["ms_clip_scored"] == D
    # The identity SAE's latents are the dimensions' positive and negative halves, 2 D of them; a
    # half that fires on fewer than two of the 50 images has no score.
    assert D < ms["ms_sae_scored"] <= 2 * D
    assert 0 < ms["ms_clip"] < 1 and 0 < ms["ms_sae"] < 1
    # Embeddings of other images are refused rather than scored against the wrong rows.
    pl.DataFrame({"row": range(90), "id": [f"x{i}" for i in range(90)],
                  "label": np.zeros(90, dtype=int)}).write_parquet(
        tmp_path / "final" / ROW_INDEX_FILE)  # fmt: skip
    with pytest.raises(ValueError, match="hold different images"):
        eval_extras(**kwargs, embeddings=tmp_path / "final",
                    monosemanticity_settings={"max_images": 50, "seed": 3})  # fmt: skip
