"""Bad training inputs fail before the first step, naming the file; unsafe names fail in config.

Non-finite rows, shards changed since extraction, and validation shards from another run are
refused by ``train_sae`` (so by ``clipsae train-sae`` and the workflow's ``train_sae`` alike)
before any checkpoint is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from clipsae.activations.shards import (
    ActivationStore,
    ShardError,
    ShardMeta,
    ShardWriter,
)
from clipsae.cli import main
from clipsae.config.validate import ConfigError, validate_config
from clipsae.runtime.checksum import file_sha256
from clipsae.sae import TopKConfig, TrainConfig, train_sae

ROOT = Path(__file__).resolve().parent.parent
D = 8
CFG = TopKConfig(d_in=D, d_sae=32, k=4)
TCFG = TrainConfig(batch_size=50, epochs=1, warmup_frac=1 / 3)
SOURCE = {"arch": "clipsae-tiny-vit", "pretrained": "build", "layer": "final"}


def _shards(directory: Path, n: int = 300, d: int = D, dtype: str = "float32", **extra) -> Path:
    """Three shards of 100 rows, with ``extra`` overriding the source keys in meta.json."""
    rows = np.random.default_rng(len(str(directory))).normal(size=(n, d))
    writer = ShardWriter(directory, d, dtype=dtype, shard_rows=100, extra={**SOURCE, **extra})
    writer.add(rows)
    writer.close()
    return directory


def _rewrite_shard(directory: Path, index: int, row: int, value: float) -> Path:
    """Put ``value`` into one row of a shard and re-record its checksum, as a writer without
    ShardWriter's finite check (another tool, an older version) would have left it."""
    meta = ShardMeta.read(directory)
    path = directory / meta.shards[index].file
    data = np.load(path)
    data[row, 3] = value
    np.save(path, data)
    meta.shards[index].sha256 = file_sha256(path)
    meta.write(directory)
    return path


def _opened(data: Path | np.ndarray | None) -> ActivationStore | np.ndarray | None:
    return ActivationStore(data) if isinstance(data, Path) else data


def _train(train: Path | np.ndarray, val: Path | np.ndarray | None, out: Path) -> None:
    train_sae(_opened(train), CFG, TCFG, out, val=_opened(val), device="cpu")


def _refused(
    train: Path | np.ndarray, val: Path | np.ndarray | None, out: Path, *patterns: str
) -> str:
    """Training raises a ShardError whose message contains every pattern, and writes nothing."""
    with pytest.raises(ShardError) as err:
        _train(train, val, out)
    for pattern in patterns:
        assert pattern in str(err.value), str(err.value)
    assert not out.exists() or not any(out.iterdir()), "training started"
    return str(err.value)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_training_row_names_the_shard_and_row(tmp_path, value):
    train = _shards(tmp_path / "train")
    shard = _rewrite_shard(train, 1, 42, value)
    _refused(train, _shards(tmp_path / "val"), tmp_path / "out", f"{shard}: row 42 has NaN or Inf")


def test_non_finite_validation_row_names_the_shard_and_row(tmp_path):
    val = _shards(tmp_path / "val")
    shard = _rewrite_shard(val, 2, 99, np.nan)
    _refused(_shards(tmp_path / "train"), val, tmp_path / "out", f"{shard}: row 99 has NaN")


def test_non_finite_rows_in_arrays_and_npy_files(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(300, D)).astype(np.float32)
    x[[7, 250], 0] = np.nan
    _refused(
        x, None, tmp_path / "a", "training activations: row 7 has NaN or Inf values (2 rows in all)"
    )
    _refused(np.nan_to_num(x), x, tmp_path / "b", "validation activations: row 7")
    np.save(tmp_path / "x.npy", x)
    argv = ["train-sae", "--activations", str(tmp_path / "x.npy"), "--out", str(tmp_path / "c")]
    assert main(argv) == 1
    assert f"error: {tmp_path / 'x.npy'}: row 7 has NaN" in capsys.readouterr().err


def test_a_validation_array_of_another_width_is_refused(tmp_path):
    x = np.random.default_rng(0).normal(size=(100, D)).astype(np.float32)
    with pytest.raises(ValueError, match=f"validation rows have width {D + 1}, training rows {D}"):
        _train(x, np.ones((20, D + 1), np.float32), tmp_path / "out")


def test_a_changed_shard_is_refused_by_checksum(tmp_path):
    train = _shards(tmp_path / "train")
    path = train / "shard-00002.npy"
    np.save(path, np.load(path)[::-1].copy())  # same shape, same values, other order
    _refused(train, None, tmp_path / "out", f"{path} changed since it was written")


@pytest.mark.parametrize(
    ("val_kwargs", "shown"),
    [
        ({"d": D + 1}, "d is 8 vs 9"),
        ({"dtype": "int16"}, "dtype is 'float32' vs 'int16'"),
        ({"arch": "ViT-B-32"}, "extra.arch is 'clipsae-tiny-vit' vs 'ViT-B-32'"),
        ({"layer": "block2"}, "extra.layer is 'final' vs 'block2'"),
        ({"pretrained": "openai"}, "extra.pretrained is 'build' vs 'openai'"),
    ],
    ids=["d", "dtype", "arch", "layer", "pretrained"],
)
def test_validation_shards_from_another_run_name_both_directories(tmp_path, val_kwargs, shown):
    train, val = _shards(tmp_path / "train"), _shards(tmp_path / "val", **val_kwargs)
    _refused(train, val, tmp_path / "out", f"training shards {train} and validation shards {val}")
    _refused(train, val, tmp_path / "out", f"come from different runs: meta.json {shown}")


def test_float16_validation_shards_are_accepted(tmp_path):
    """Storage precision is not a different run: both are read as float32."""
    train, val = _shards(tmp_path / "train"), _shards(tmp_path / "val", dtype="float16")
    _train(train, val, tmp_path / "out")
    assert (tmp_path / "out" / "sae_weights.safetensors").is_file()


@pytest.mark.parametrize("section", ["models", "datasets", "saes"])
@pytest.mark.parametrize("name", ["../x", "a/b", "/abs/path", "..", "a/../../b"])
def test_names_that_would_leave_results_are_refused_by_config(section, name):
    """Model, dataset and SAE names become directories under results/, so a separator or a
    leading dot could write outside it."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config[section][name] = config[section].popitem()[1]
    with pytest.raises(ConfigError) as err:
        validate_config(config, ROOT)
    assert f"{section}: {name!r} does not match" in str(err.value)
