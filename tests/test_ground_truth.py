"""Latents as detectors of planted factors: exact scores, baselines, naming, files and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from planted import COLORS, SHAPES

from clipsae.activations.shards import ShardWriter
from clipsae.cli import main
from clipsae.interpret.ground_truth import (
    Factors,
    add_naming,
    detectors,
    ground_truth,
    mean_activation,
    name_matches,
    projection_encoder,
    random_directions,
    raw_directions,
    summarise,
)
from clipsae.sae import TopKConfig, TopKSAE, save_sae

D = 32


def planted_split(n: int, seed: int) -> tuple[np.ndarray, pl.DataFrame]:
    """Rows whose dimension 0 is 1 exactly on red shapes, dimension 1 is 1 on circles and
    dimension 2 is -1 on green shapes; every other dimension is unit Gaussian noise."""
    rng = np.random.default_rng(seed)
    color = rng.choice(COLORS, n)
    shape = rng.choice(SHAPES, n)
    background = np.array([rng.choice([c for c in COLORS if c != col]) for col in color])
    x = rng.normal(size=(n, D)).astype(np.float32)
    x[:, 0] = color == "red"
    x[:, 1] = shape == "circle"
    x[:, 2] = -(color == "green").astype(np.float32)
    frame = pl.DataFrame({"color": color, "shape": shape, "background": background})
    return x, frame


def planted_encoder(x: torch.Tensor) -> torch.Tensor:
    """Latent 0 copies the red dimension, latent 1 fires on red or circle (mixed), latent 2 is a
    noise dimension, latent 3 never fires."""
    return torch.stack(
        [x[:, 0], x[:, 0] + x[:, 1], torch.relu(x[:, 5]), torch.zeros(len(x))], dim=1
    )


def _stream(x: np.ndarray, size: int = 300):
    return lambda: (x[i : i + size] for i in range(0, len(x), size))


@pytest.fixture(scope="module")
def planted():
    x_train, f_train = planted_split(900, seed=0)
    x_test, f_test = planted_split(700, seed=1)
    factors = ("color", "shape", "background")
    train = Factors.from_frame(f_train, factors)
    test = Factors.from_frame(f_test, factors, train.values)
    return x_train, x_test, train, test, f_test


def _row(table: pl.DataFrame, factor: str, value: str, method: str | None = None) -> dict:
    rows = table.filter((pl.col("factor") == factor) & (pl.col("value") == value))
    if method is not None:
        rows = rows.filter(pl.col("method") == method)
    assert len(rows) == 1
    return rows.row(0, named=True)


def test_planted_red_latent_is_a_perfect_monosemantic_detector(planted):
    x_train, x_test, train, test, f_test = planted
    table, latents = detectors(planted_encoder, _stream(x_train), _stream(x_test), train, test)
    red = _row(table, "color", "red")
    assert red["latent"] == 0
    assert red["f1"] == 1.0 and red["auroc"] == 1.0 and red["f1_train"] == 1.0
    assert 0.0 < red["threshold"] <= 1.0
    assert red["n_test"] == int((f_test["color"] == "red").sum())
    # Latent 1 (red or circle) is the best circle detector but its precision shows the mixing.
    circle = _row(table, "shape", "circle")
    assert circle["latent"] == 1 and circle["recall"] == 1.0 and circle["precision"] < 0.75
    # Latent 0 is monosemantic, 1 (red or circle, ~0.57 of its mass on red) and the noise latent
    # 2 are mixed, 3 is dead.
    assert latents == {
        "n_latents": 4,
        "n_dead": 1,
        "n_rare": 0,
        "n_monosemantic": 1,
        "n_mixed": 2,
        "monosemantic_fraction": pytest.approx(1 / 3),
    }


def test_a_sparse_heavy_tailed_latent_on_one_value_is_recovered_with_f1_one(planted):
    """A TopK-like latent: 0 off red, exp(2 z) on red (firing values from ~0.002 to ~500).

    With linear bins from the minimum, bin 0 held the zeros and every firing value below
    max / 256, so "fires at all" was no threshold and this latent scored F1 0.72."""
    x_train, x_test, train, test, _ = planted

    def encode(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[:, 0] * torch.exp(2 * x[:, 4]), torch.zeros(len(x))], dim=1)

    table, _ = detectors(encode, _stream(x_train), _stream(x_test), train, test)
    red = _row(table, "color", "red")
    assert (red["latent"], red["f1_train"], red["f1"], red["auroc"]) == (0, 1.0, 1.0, 1.0)
    assert 0.0 < red["threshold"] < float(torch.exp(torch.tensor(2.0 * x_train[:, 4].min())))


def test_rows_that_do_not_line_up_with_the_factors_are_an_error(planted):
    x_train, x_test, train, test, _ = planted
    message = "test split: 699 activation rows but factor values for 700"
    with pytest.raises(ValueError, match=message):
        detectors(planted_encoder, _stream(x_train), _stream(x_test[1:]), train, test)


def test_a_latent_on_a_handful_of_images_is_rare_not_monosemantic(planted):
    x_train, x_test, train, test, _ = planted

    def encode(x: torch.Tensor) -> torch.Tensor:
        # Latent 1 fires on the first nine test images (assorted colours: too few to judge),
        # told apart by their noise dimension 3, which is unique to each row.
        return torch.stack(
            [x[:, 0], torch.isin(x[:, 3], torch.from_numpy(x_test[:9, 3])).float()], 1
        )

    _, latents = detectors(encode, _stream(x_train), _stream(x_test), train, test)
    assert (latents["n_rare"], latents["n_monosemantic"], latents["n_mixed"]) == (1, 1, 0)
    _, strict = detectors(
        encode, _stream(x_train), _stream(x_test), train, test, min_active=1, mono_threshold=0.0
    )
    assert (strict["n_rare"], strict["n_monosemantic"]) == (0, 2)


def test_shortlist_picks_what_the_exhaustive_scan_picks(planted):
    x_train, x_test, train, test, _ = planted
    encode = projection_encoder(random_directions(64, D, seed=3), mean_activation([x_train]))
    args = (encode, _stream(x_train), _stream(x_test), train, test)
    short, _ = detectors(*args, n_candidates=8)
    full, _ = detectors(*args, n_candidates=64)
    assert short["latent"].to_list() == full["latent"].to_list()
    assert short["f1"].to_list() == pytest.approx(full["f1"].to_list())


def test_raw_dimensions_find_both_signs_and_random_directions_score_low(planted):
    x_train, x_test, train, test, _ = planted
    mean = mean_activation([x_train])
    methods = {
        "sae": planted_encoder,
        "clip": projection_encoder(raw_directions(D), mean),
        "random": projection_encoder(random_directions(64, D, seed=0), mean),
    }
    table, summary = ground_truth(methods, _stream(x_train), _stream(x_test), train, test)
    assert len(table) == 3 * (len(COLORS) + len(SHAPES) + len(COLORS))
    # Green is planted as -1 on dimension 2: only the negative-sign copy (latent D + 2) sees it.
    green = _row(table, "color", "green", "clip")
    assert green["latent"] == D + 2 and green["f1"] == 1.0 and green["auroc"] == 1.0
    assert _row(table, "color", "red", "clip")["f1"] == 1.0
    # Random directions mix the planted dimensions with 29 noise dimensions.
    random_red = _row(table, "color", "red", "random")
    assert random_red["f1"] < 0.75 and random_red["auroc"] < 0.97
    random = summary["methods"]["random"]
    assert random["recovered_fraction"] == 0.0
    assert random["mean_f1"] < summary["methods"]["clip"]["mean_f1"] - 0.1
    # The planted encoder recovers red and circle; backgrounds and the rest are at chance.
    sae = summary["methods"]["sae"]
    assert sae["recovered_by_factor"]["color"] == 0.25
    assert sae["latents"]["n_monosemantic"] == 1


@pytest.mark.parametrize(
    ("entry", "factor", "value", "expected"),
    [
        ("red", "color", "red", True),
        ("navy background", "background", "navy", True),
        ("navy background", "color", "navy", False),
        ("red", "background", "red", False),
        ("a red circle", "color", "red", True),
        ("a red circle", "shape", "circle", True),
        ("Red", "color", "red", True),
        ("reddish", "color", "red", False),
    ],
)
def test_name_matches(entry, factor, value, expected):
    assert name_matches(entry, factor, value) is expected


def test_naming_accuracy_on_a_hand_made_vocab_table():
    table = pl.DataFrame(
        {
            "method": ["sae"] * 5,
            "factor": ["color", "background", "shape", "color", "background"],
            "value": ["red", "navy", "circle", "navy", "red"],
            "latent": [0, 0, 1, 2, 9],
            "f1": [0.9, 0.85, 0.5, 0.95, 0.2],
            "auroc": [0.99, 0.97, 0.7, 0.99, 0.6],
        }
    )
    names = pl.DataFrame(
        {
            "latent": [0, 1, 2],
            "top_en": ["red; navy background; circle", "square; star; circle", "navy background"],
        }
    )
    named = add_naming(table, names)
    assert named["name_top1"].to_list() == [True, False, False, False, None]
    assert named["name_top3"].to_list() == [True, True, True, False, None]
    summary = summarise(named)["sae"]
    # Over the four named values: top-1 1/4, top-3 3/4; over the three with F1 >= 0.8
    # (red, navy background, navy): top-1 1/3, top-3 2/3.
    assert summary["naming_top1"] == pytest.approx(0.25)
    assert summary["naming_top3"] == pytest.approx(0.75)
    assert summary["naming_top1_recovered"] == pytest.approx(1 / 3)
    assert summary["naming_top3_recovered"] == pytest.approx(2 / 3)
    assert summary["recovered_fraction"] == pytest.approx(3 / 5)


def _write_store(x: np.ndarray, ids: list[str], directory: Path) -> None:
    writer = ShardWriter(directory, D, shard_rows=256)
    writer.add(x)
    writer.close()
    rows = {"row": np.arange(len(ids)), "id": ids, "label": np.zeros(len(ids), int)}
    pl.DataFrame(rows).write_parquet(directory / "index.parquet")


def _planted_sae() -> TopKSAE:
    """A real TopK SAE (k = 1): latent 0 reads the red dimension, latent 1 the circle one."""
    sae = TopKSAE(TopKConfig(d_in=D, d_sae=8, k=1))
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.W_enc[0, 0] = 2.0
        sae.W_enc[1, 1] = 1.0
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_cli_writes_table_and_summary(tmp_path):
    x_train, f_train = planted_split(600, seed=0)
    x_test, f_test = planted_split(500, seed=1)
    ids_train = [f"train-{i:06d}" for i in range(600)]
    ids_test = [f"test-{i:06d}" for i in range(500)]
    index = pl.concat(
        [
            f_train.with_columns(id=pl.Series(ids_train), split=pl.lit("train")),
            f_test.with_columns(id=pl.Series(ids_test), split=pl.lit("test")),
        ]
    ).with_columns(label=pl.lit(0), source=pl.lit("planted"))
    (tmp_path / "data").mkdir()
    index.write_parquet(tmp_path / "data" / "index.parquet")
    # The test split lost its first image at extraction: rows are joined by id, not position.
    _write_store(x_train, ids_train, tmp_path / "train")
    _write_store(x_test[1:], ids_test[1:], tmp_path / "test")
    save_sae(_planted_sae(), tmp_path / "sae")
    pl.DataFrame({"latent": [0, 1], "top_en": ["red; navy background", "circle"]}).write_csv(
        tmp_path / "vocab.csv"
    )
    out = tmp_path / "gt" / "ground_truth.parquet"
    argv = ["ground-truth", "--sae", str(tmp_path / "sae"), "--train", str(tmp_path / "train")]
    argv += ["--test", str(tmp_path / "test"), "--index", str(tmp_path / "data")]
    argv += ["--names", str(tmp_path / "vocab.csv"), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    table = pl.read_parquet(out)
    assert sorted(set(table["method"])) == ["clip", "random", "sae"]
    red = _row(table, "color", "red", "sae")
    assert (red["latent"], red["f1"], red["auroc"]) == (0, 1.0, 1.0)
    assert red["n_test"] == int((f_test["color"][1:] == "red").sum())
    assert red["name_top1"] is True
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["factors"] == ["color", "shape", "background"]
    sae = summary["methods"]["sae"]
    assert sae["naming_top1_recovered"] == 1.0  # red and circle, both named right
    assert sae["recovered_fraction"] == pytest.approx(2 / 11)
    assert summary["methods"]["clip"]["naming_top1"] is None
