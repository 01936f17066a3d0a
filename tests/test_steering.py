"""Steering on a planted world: the 'red' latent's decoder direction is the red class embedding."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from planted import COLORS, SHAPES

from clipsae.activations.shards import ShardWriter
from clipsae.cli import main
from clipsae.data import build_dataset, write_index
from clipsae.interpret.steering import (
    Setting,
    activation_percentiles,
    embedding_forwards,
    latent_delta,
    spliced_forwards,
    steer,
    sweep,
)
from clipsae.models.clip import VisionActivations, load_clip
from clipsae.sae import TopKConfig, TopKSAE, load_sae, save_sae
from clipsae.steps.steering import SplicedSource, run_steering

D = 16


def planted_world(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings ``e_color + 0.3 e_background + e_shape + noise``: colours on axes 0-3, shapes on
    4-6, Gaussian noise (std 0.05) everywhere. Returns embeddings, colours and shapes."""
    rng = np.random.default_rng(seed)
    color = rng.integers(0, len(COLORS), n)
    background = (color + rng.integers(1, len(COLORS), n)) % len(COLORS)
    shape = rng.integers(0, len(SHAPES), n)
    x = 0.05 * rng.normal(size=(n, D))
    rows = np.arange(n)
    x[rows, color] += 1.0
    x[rows, background] += 0.3
    x[rows, len(COLORS) + shape] += 1.0
    return x.astype(np.float32), color, shape


def class_embeddings() -> tuple[np.ndarray, np.ndarray]:
    eye = np.eye(D, dtype=np.float32)
    return eye[: len(COLORS)], eye[len(COLORS) : len(COLORS) + len(SHAPES)]


def planted_sae() -> TopKSAE:
    """A real TopK SAE (k = 3) whose latents are the axes: latent 0 reads and writes red."""
    sae = TopKSAE(TopKConfig(d_in=D, d_sae=D, k=3))
    with torch.no_grad():
        sae.W_dec.copy_(torch.eye(D))
        sae.W_enc.copy_(torch.eye(D))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


def _batches(x: np.ndarray, size: int = 128):
    return (x[i : i + size] for i in range(0, len(x), size))


def _setting(table: pl.DataFrame, setting: str, latent: int = 0) -> dict:
    return table.filter((pl.col("setting") == setting) & (pl.col("latent") == latent)).row(
        0, named=True
    )


@pytest.fixture(scope="module")
def steered():
    x, color, _ = planted_world(600)
    sae = planted_sae()
    colors, shapes = class_embeddings()
    peaks = activation_percentiles(sae.encode, _batches(x), [0, 1])
    settings = sweep([(0, 0, "red"), (1, 1, "green")], peaks, multipliers=(1.0, 2.0, 4.0))
    table, neighbours = steer(
        sae,
        settings,
        embedding_forwards(_batches(x), torch.device("cpu")),
        colors,
        other_classes=shapes,
        row_values=np.array(COLORS)[color],
        n_queries=50,
    )
    return table, neighbours, peaks, color


def test_peak_is_the_99th_percentile_of_firing_activations(steered):
    _, _, peaks, _ = steered
    # Red images have code 1 + noise on latent 0; red backgrounds 0.3: the 99th percentile is
    # that of the shapes' own colour.
    assert peaks == pytest.approx([1.1, 1.1], abs=0.06)


def test_amplifying_the_red_latent_turns_colour_predictions_red_and_leaves_shapes(steered):
    table, _, _, color = steered
    before = _setting(table, "x2")
    assert before["target_before"] == pytest.approx(float((color == 0).mean()), abs=0.01)
    for setting in ("x2", "x4"):
        row = _setting(table, setting)
        assert row["flip_to_target"] >= 0.98
        assert row["target_after"] >= 0.98
        assert row["other_changed"] <= 0.01
        assert row["p_target_after"] > 0.95
    # Retrieval follows: the amplified queries' neighbours are red images.
    x4 = _setting(table, "x4")
    assert x4["nn_target_before"] < 0.5 and x4["nn_target_after"] >= 0.9
    # The green latent's amplification turns images green, not red.
    green = _setting(table, "x4", latent=1)
    assert green["flip_to_target"] >= 0.98 and green["other_changed"] <= 0.01


def test_ablating_the_red_latent_removes_red(steered):
    table, *_ = steered
    row = _setting(table, "ablate")
    assert row["target_removed"] >= 0.98 and row["target_after"] <= 0.01
    assert row["other_changed"] <= 0.01
    # Only red images change: ablation of a latent that does not fire is no edit.
    assert row["changed"] == pytest.approx(row["target_before"] * row["target_removed"], abs=0.01)


def test_neighbours_table_lists_each_query_before_and_after(steered):
    _, neighbours, _, color = steered
    x4 = neighbours.filter((pl.col("latent") == 0) & (pl.col("setting") == "x4"))
    assert len(x4) == 50 * 5 and x4["query_row"].n_unique() == 50
    assert (x4["row_before"] != x4["query_row"]).all()  # a query is not its own neighbour
    assert (color[x4["row_after"].to_numpy()] == 0).mean() >= 0.9


def test_edit_to_the_current_code_is_no_edit():
    x, _, _ = planted_world(40, seed=3)
    sae = planted_sae()
    xt = torch.from_numpy(x)
    # Latent 10 never fires (axis 10 is noise, below the top 3): setting it to 0 changes nothing.
    codes = sae.encode(xt)
    assert torch.equal(xt + latent_delta(sae, codes, 10, 0.0), xt)
    moved = latent_delta(sae, codes, 10, 2.0)
    assert torch.allclose(moved[:, 10], torch.full((40,), 2.0)) and moved[:, :10].abs().max() == 0


def test_steer_command_with_a_ground_truth_table(tmp_path):
    x, color, shape = planted_world(300, seed=1)
    ids = [f"test-{i:06d}" for i in range(len(x))]
    writer = ShardWriter(tmp_path / "acts", D, shard_rows=128)
    writer.add(x)
    writer.close()
    rows = {"row": np.arange(len(x)), "id": ids, "label": color}
    pl.DataFrame(rows).write_parquet(tmp_path / "acts" / "index.parquet")
    (tmp_path / "data").mkdir()
    index = {"id": ids, "split": ["test"] * len(x), "label": color, "source": ids}
    index |= {"color": np.array(COLORS)[color], "shape": np.array(SHAPES)[shape]}
    pl.DataFrame(index).write_parquet(tmp_path / "data" / "index.parquet")
    colors, shapes = class_embeddings()
    for name, emb, classes in (("colors", colors, COLORS), ("shapes", shapes, SHAPES)):
        np.save(tmp_path / f"{name}.npy", emb)
        pl.DataFrame({"label": range(len(classes)), "name": classes}).write_parquet(
            tmp_path / f"{name}.parquet"
        )
    save_sae(planted_sae(), tmp_path / "sae")
    gt = {
        "method": ["sae", "sae", "clip"],
        "factor": ["color"] * 3,
        "value": ["red", "blue", "red"],
    }
    pl.DataFrame(gt | {"latent": [0, 2, 7]}).write_parquet(tmp_path / "gt.parquet")
    out = tmp_path / "steer" / "steering.parquet"
    argv = ["steer", "--sae", str(tmp_path / "sae"), "--activations", str(tmp_path / "acts")]
    argv += ["--classes", str(tmp_path / "colors.npy")]
    argv += ["--other-classes", str(tmp_path / "shapes.npy")]
    argv += ["--ground-truth", str(tmp_path / "gt.parquet"), "--factor", "color"]
    argv += ["--index", str(tmp_path / "data"), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    table = pl.read_parquet(out)
    # The SAE's detectors of red (0) and blue (2), not the clip baseline's latent 7.
    assert sorted(set(table["latent"])) == [0, 2]
    assert set(table["setting"]) == {"ablate", "x0.5", "x1", "x2", "x4"}
    blue = _setting(table, "x4", latent=2)
    assert blue["target"] == "blue" and blue["flip_to_target"] >= 0.98
    neighbours = pl.read_parquet(out.with_suffix(".neighbours.parquet"))
    assert set(neighbours["query_id"]) <= set(ids) and len(neighbours) == 2 * 5 * 64 * 5
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["percentile"] == 99.0
    assert summary["settings"]["x4"]["n_latents"] == 2
    assert summary["settings"]["x4"]["flip_to_target"] >= 0.98
    assert summary["settings"]["ablate"]["target_removed"] >= 0.98


def test_block_layer_edits_run_through_the_rest_of_the_tower(tmp_path):
    """A block-1 SAE on a random tiny CLIP: ablating a latent that never fires changes no
    prediction, amplifying it far changes many; the edit is spliced into the CLS token."""
    torch.manual_seed(0)
    clip = load_clip("clipsae-tiny-vit", "none", device="cpu")
    entry = {"source": "synthetic", "n_train": 0, "n_test": 16, "seed": 4, "label_by": "color"}
    dataset = build_dataset("s", entry)
    write_index(dataset, tmp_path / "data")
    encoder = VisionActivations(clip.model, 1)
    records = dataset.records()
    with torch.no_grad():
        images = torch.stack([clip.preprocess(dataset.open_image(r)) for r in records])
        cls = encoder(images).numpy()
    width = cls.shape[1]
    writer = ShardWriter(tmp_path / "acts", width, extra={"layer": "block1"})
    writer.add(cls)
    writer.close()
    # Latent 0 cannot fire (zero encoder column, negative bias); the rest read the dimensions.
    sae = TopKSAE(TopKConfig(d_in=width, d_sae=width + 1, k=8))
    with torch.no_grad():
        sae.W_enc[:, 0] = 0.0
        sae.b_enc.fill_(0.0)
        sae.b_enc[0] = -1.0
        sae.W_enc[:, 1:] = torch.eye(width)
    sae_dir = tmp_path / "sae"
    save_sae(sae, sae_dir)
    classes = np.random.default_rng(2).normal(size=(len(dataset.class_names), 128))
    classes = (classes / np.linalg.norm(classes, axis=1, keepdims=True)).astype(np.float32)
    np.save(tmp_path / "colors.npy", classes)
    pl.DataFrame({"label": range(len(classes)), "name": dataset.class_names}).write_parquet(
        tmp_path / "colors.parquet"
    )
    out = tmp_path / "steer.parquet"
    run_steering(
        sae_dir=sae_dir,
        acts_dir=tmp_path / "acts",
        classes_npy=tmp_path / "colors.npy",
        out_parquet=out,
        out_json=tmp_path / "steer.json",
        targets=[(0, "red")],
        factor="color",
        index_dir=tmp_path / "data",
        multipliers=(),
        spliced=SplicedSource({"arch": "clipsae-tiny-vit", "pretrained": "none"}, None, "s", entry),
        device="cpu",
    )
    table = pl.read_parquet(out)
    assert table.schema["other_changed"] == pl.Float64  # null without --other-classes
    ablate = table.row(0, named=True)
    assert ablate["setting"] == "ablate" and ablate["n"] == 16
    assert ablate["changed"] == 0.0
    assert ablate["p_target_after"] == pytest.approx(ablate["p_target_before"], abs=1e-6)
    neighbours = pl.read_parquet(out.with_suffix(".neighbours.parquet"))
    assert (neighbours["id_before"] == neighbours["id_after"]).all()
    # Set to a large value, latent 0's decoder row moves the CLS token and the predictions.
    far, _ = steer(
        load_sae(sae_dir),
        [Setting(0, 0, "red", "far", 50.0)],
        spliced_forwards(clip, dataset, records, "block1", batch_size=5),
        classes,
    )
    assert far["changed"][0] > 0.2


def test_steer_command_refuses_bad_targets(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["steer", "--sae", "s", "--activations", "a", "--classes", "c.npy", "--out", "o",
              "--latent", "red=17"])  # fmt: skip
    assert "expected LATENT=CLASS (e.g. 17=red), got 'red=17'" in capsys.readouterr().err
    x, _, _ = planted_world(20)
    writer = ShardWriter(tmp_path / "acts", D)
    writer.add(x)
    writer.close()
    save_sae(planted_sae(), tmp_path / "sae")
    np.save(tmp_path / "colors.npy", class_embeddings()[0])
    pl.DataFrame({"label": range(4), "name": COLORS}).write_parquet(tmp_path / "colors.parquet")
    with pytest.raises(ValueError, match=r"targets \['purple'\] are not classes of .*colors.npy"):
        run_steering(
            sae_dir=tmp_path / "sae",
            acts_dir=tmp_path / "acts",
            classes_npy=tmp_path / "colors.npy",
            out_parquet=tmp_path / "o.parquet",
            out_json=tmp_path / "o.json",
            targets=[(0, "red"), (1, "purple")],
            device="cpu",
        )
