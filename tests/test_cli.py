"""The `clipsae` subcommands chained by hand, as a user without Snakemake would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clipsae.activations.shards import ActivationStore
from clipsae.cli import main
from clipsae.data import build_dataset

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """A class-per-folder image tree rendered by the synthetic source."""
    root = tmp_path_factory.mktemp("images")
    dataset = build_dataset("s", {"source": "synthetic", "n_train": 40, "n_test": 0, "seed": 5})
    for record in dataset.records():
        folder = root / dataset.class_names[record.label]
        folder.mkdir(exist_ok=True)
        dataset.open_image(record).save(folder / f"{record.id}.png")
    return root


def test_extract_train_evaluate_features_and_name(image_folder, tmp_path):
    acts = tmp_path / "acts"
    assert main(["extract", "--images", str(image_folder), "--model", "clipsae-tiny-vit",
                 "--pretrained", "none", "--layer", "final", "--out", str(acts),
                 "--shard-rows", "16"]) == 0  # fmt: skip
    store = ActivationStore(acts, verify=True)
    assert (len(store), store.d) == (40, 128)
    labels = pl.read_parquet(acts / "index.parquet")["label"].to_list()
    assert sorted(set(labels)) == list(range(len({p.parent for p in image_folder.rglob("*.png")})))

    sae = tmp_path / "sae"
    assert main(["train-sae", "--activations", str(acts), "--arch", "topk", "--k", "4",
                 "--expansion", "2", "--batch-size", "8", "--epochs", "2", "--lr", "1e-3",
                 "--seed", "0", "--out", str(sae)]) == 0  # fmt: skip

    classes = tmp_path / "classes.json"
    names = sorted(p.name for p in image_folder.iterdir())
    classes.write_text(json.dumps({"classes": names}))
    class_emb = tmp_path / "classes.npy"
    assert main(["embed-text", "--model", "clipsae-tiny-vit", "--classes", str(classes),
                 "--template", "a {}.", "--out", str(class_emb)]) == 0  # fmt: skip
    assert np.load(class_emb).shape == (len(names), 128)

    result = tmp_path / "eval.json"
    assert main(["evaluate", "--sae", str(sae), "--activations", str(acts),
                 "--classes", str(class_emb), "--out", str(result)]) == 0  # fmt: skip
    metrics = json.loads(result.read_text())
    assert metrics["n"] == 40 and metrics["l0"] == pytest.approx(4.0)
    assert metrics["zeroshot"]["n"] == 40 and metrics["zeroshot"]["n_classes"] == len(names)

    features = tmp_path / "features"
    assert main(["features", "--sae", str(sae), "--activations", str(acts), "--top-k", "3",
                 "--out", str(features)]) == 0  # fmt: skip
    stats = pl.read_parquet(features / "stats.parquet")
    assert stats.height == 256 and stats["fire_count"].sum() == 40 * 4

    vocab, tsv = tmp_path / "vocab.npy", ROOT / "config/vocab/shapes_en_ru.tsv"
    assert main(["embed-text", "--model", "clipsae-tiny-vit", "--vocab", str(tsv),
                 "--out", str(vocab)]) == 0  # fmt: skip
    out = tmp_path / "names.csv"
    assert (
        main(["name", "--sae", str(sae), "--vocab-embeddings", str(vocab), "--out", str(out)]) == 0
    )
    table = pl.read_csv(out)
    assert table.height == 256 and set(table["label_en"]) <= set(
        pl.read_parquet(vocab.with_suffix(".parquet"))["en"]
    )


def test_build_clip_writes_a_loadable_checkpoint(tmp_path):
    from clipsae.models.clip import load_clip

    assert main(["build-clip", "--out", str(tmp_path), "--n-images", "64", "--steps", "3",
                 "--batch-size", "16"]) == 0  # fmt: skip
    info = json.loads((tmp_path / "build.json").read_text())
    assert info["config"]["steps"] == 3 and np.isfinite(info["final_loss"])
    load_clip("clipsae-tiny-vit", str(tmp_path / "open_clip_model.safetensors"), device="cpu")


def _bad_inputs(root: Path) -> dict[str, Path]:
    """One file per kind of bad activations input, named for what is wrong with it."""
    rows = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    nan_rows = rows.copy()
    nan_rows[3, 2] = np.nan
    paths = {name: root / f"{name}.npy" for name in ("ok", "nan", "flat", "text")}
    np.save(paths["ok"], rows)
    np.save(paths["nan"], nan_rows)
    np.save(paths["flat"], rows[0])
    paths["text"].write_text("0.1 0.2 0.3\n")
    return paths


@pytest.mark.parametrize(
    ("name", "flags", "message"),
    [
        ("missing", [], "missing.npy does not exist (expected a .npy file or a shard directory)"),
        ("text", [], "text.npy is not a NumPy .npy file (it starts with b'0.1 0.'"),
        ("nan", [], "nan.npy: row 3 has NaN or Inf values (1 rows in all)"),
        (
            "flat",
            [],
            "flat.npy: expected a 2-D array of activations (rows x width), got shape (8,)",
        ),
        ("ok", ["--k", "100"], "k must be in 1..d_sae=16, got 100"),
    ],
)
def test_bad_activations_print_one_line_naming_the_file(tmp_path, capsys, name, flags, message):
    path = _bad_inputs(tmp_path).get(name, tmp_path / f"{name}.npy")
    argv = ["train-sae", "--activations", str(path), "--expansion", "2", *flags,
            "--out", str(tmp_path / "sae")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("clipsae train-sae: error: "), err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "sae" / "sae_weights.safetensors").exists()


def test_an_empty_image_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["extract", "--images", str(tmp_path / "empty"), "--model", "clipsae-tiny-vit",
            "--out", str(tmp_path / "acts")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"clipsae extract: error: {tmp_path / 'empty'}: no images (.bmp, ")


def test_the_traceback_appears_only_with_verbose(tmp_path):
    text = _bad_inputs(tmp_path)["text"]
    argv = [sys.executable, "-m", "clipsae", "train-sae", "--activations", str(text),
            "--out", str(tmp_path / "sae")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    quiet = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert (
        quiet.stderr.strip()
        .splitlines()[-1]
        .startswith(f"clipsae train-sae: error: {text} is not a NumPy .npy file")
    )
    verbose = subprocess.run([*argv[:3], "-v", *argv[3:]], env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr and "ShardError" in verbose.stderr
