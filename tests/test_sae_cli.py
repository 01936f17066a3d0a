"""``clipsae train-sae`` end to end on a small .npy and on a shard directory."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from clipsae.activations.shards import ShardWriter
from clipsae.cli import main
from clipsae.sae import load_sae


def test_train_sae_cli_end_to_end(tmp_path) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(1200, 8)).astype(np.float32)
    val = rng.normal(size=(300, 8)).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    writer = ShardWriter(tmp_path / "val", d=8, shard_rows=128)
    writer.add(val)
    writer.close()
    out = tmp_path / "sae"
    argv = [
        "train-sae",
        "--activations",
        str(tmp_path / "train.npy"),
        "--val",
        str(tmp_path / "val"),
        "--k",
        "4",
        "--expansion",
        "4",
        "--batch-size",
        "100",
        "--epochs",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    for name in ("sae_weights.safetensors", "cfg.json", "log.parquet", "metrics.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    cfg = json.loads((out / "cfg.json").read_text())
    assert (cfg["arch"], cfg["d_in"], cfg["d_sae"], cfg["k"]) == ("topk", 8, 32, 4)
    assert metrics["evaluated_on"] == "val" and metrics["n"] == 300 and metrics["l0"] <= 4
    assert metrics["l0_frac"] == pytest.approx(metrics["l0"] / 32)
    assert {"dense_fvu", "train_seconds", "samples_per_second"} <= set(metrics)
    sae = load_sae(out)
    with torch.no_grad():
        x_hat = sae(torch.from_numpy(val)).double().numpy()
    fvu = ((val - x_hat) ** 2).sum() / ((val - val.mean(0)) ** 2).sum()
    assert metrics["fvu"] == pytest.approx(fvu, rel=1e-6)
    log = pl.read_parquet(out / "log.parquet")
    assert log.columns == ["step", "loss", "mse", "aux_loss", "l0", "lr", "grad_norm", "val_fvu"]
    assert log.height == metrics["steps"] == 24


def test_set_passes_any_config_key_and_refuses_unknown_ones(tmp_path, capsys) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(256, 8)).astype(np.float32))
    base = ["train-sae", "--activations", str(tmp_path / "x.npy"), "--arch", "matryoshka_k",
            "--expansion", "2", "--batch-size", "64", "--epochs", "1"]  # fmt: skip
    out = tmp_path / "msae"
    assert main([*base, "--set", "k_list=[2, 4]", "--set", "loss_weighting=uniform",
                 "--set", "checkpoint_every=3", "--out", str(out)]) == 0  # fmt: skip
    cfg = json.loads((out / "cfg.json").read_text())
    assert cfg["k_list"] == [2, 4] and cfg["loss_weighting"] == "uniform"
    assert cfg["train"]["checkpoint_every"] == 3
    assert main([*base, "--set", "learning_rate=1", "--out", str(tmp_path / "bad")]) == 1
    assert "error: unknown key 'learning_rate' for arch 'matryoshka_k'" in capsys.readouterr().err


def test_a_key_of_another_architecture_is_refused_by_name(tmp_path, capsys) -> None:
    np.save(tmp_path / "x.npy", np.zeros((64, 8), dtype=np.float32))
    argv = ["train-sae", "--activations", str(tmp_path / "x.npy"), "--arch", "relu", "--k", "8",
            "--out", str(tmp_path / "relu")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("clipsae train-sae: error: ") and err.count("\n") == 1, err
    assert "key 'k' does not apply to arch 'relu'" in err
    assert not (tmp_path / "relu").exists()
