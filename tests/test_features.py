"""Streaming statistics and top-k against brute force on the full code matrix."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from configs import weak_sampling

from clipsae.interpret.features import (
    STATS_FILE,
    TOP_FILE,
    WEAK_FILE,
    latent_stats_and_top,
    write_features,
)
from clipsae.runtime.atomic import atomic_output

D_IN, D_SAE, N_ROWS = 8, 24, 203


def _relu_encoder(seed: int = 0):
    """A random elementwise ReLU encoder; some latents are dead, others sparse.

    Each code depends on one input value only (no matmul), so a row's codes are bit-identical
    whatever batch it is encoded in, and the brute-force reference can be compared exactly.
    """
    gen = torch.Generator().manual_seed(seed)
    source = torch.randint(0, D_IN, (D_SAE,), generator=gen)
    scale = torch.rand(D_SAE, generator=gen) + 0.5
    bias = torch.linspace(-2.0, 0.5, D_SAE)
    bias[:2] = -1e3  # two latents that can never fire

    def encode(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x[:, source] * scale + bias)

    return encode


def _data(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N_ROWS, D_IN)).astype(np.float32)


def _batches(data: np.ndarray, size: int):
    return (data[i : i + size] for i in range(0, len(data), size))


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    with torch.inference_mode():
        return _relu_encoder()(torch.from_numpy(_data())).numpy()


@pytest.mark.parametrize("batch_size", [1, 7, 64, N_ROWS, 1000])
@pytest.mark.parametrize("top_k", [1, 5, 16])
def test_streaming_top_k_matches_full_sort(codes: np.ndarray, batch_size: int, top_k: int) -> None:
    top = latent_stats_and_top(_relu_encoder(), _batches(_data(), batch_size), D_SAE, top_k).top
    for latent in range(D_SAE):
        column = codes[:, latent]
        order = np.argsort(-column, kind="stable")[:top_k]
        expected = order[column[order] > 0]
        got = top.filter(pl.col("latent") == latent).sort("rank")
        assert got["rank"].to_list() == list(range(len(expected)))
        np.testing.assert_array_equal(got["activation"].to_numpy(), column[expected])
        # Row identity is only defined where the activation value is unique in the column.
        values, counts = np.unique(column, return_counts=True)
        unique = np.isin(column[expected], values[counts == 1])
        np.testing.assert_array_equal(got["row"].to_numpy()[unique], expected[unique])


def test_dead_latents_have_no_top_rows(codes: np.ndarray) -> None:
    top = latent_stats_and_top(_relu_encoder(), _batches(_data(), 50), D_SAE, 4).top
    assert set(top["latent"].to_list()).isdisjoint({0, 1})
    assert (top["activation"] > 0).all()
    assert top.schema == {
        "latent": pl.Int64,
        "rank": pl.Int64,
        "row": pl.Int64,
        "activation": pl.Float32,
    }


def test_stats_match_numpy(codes: np.ndarray) -> None:
    stats = latent_stats_and_top(_relu_encoder(), _batches(_data(), 33), D_SAE, 3).stats
    fire = (codes > 0).sum(axis=0)
    assert stats["latent"].to_list() == list(range(D_SAE))
    assert stats["fire_count"].to_list() == fire.tolist()
    np.testing.assert_allclose(stats["frequency"].to_numpy(), fire / N_ROWS, rtol=0, atol=0)
    np.testing.assert_allclose(stats["mean_activation"].to_numpy(), codes.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(stats["max_activation"].to_numpy(), codes.max(0))
    active = fire > 0
    when_active = stats["mean_when_active"].to_numpy()
    np.testing.assert_allclose(when_active[active], codes.sum(0)[active] / fire[active], rtol=1e-6)
    assert stats["mean_when_active"].null_count() == int((~active).sum()) == 2


def test_rejects_wrong_code_width_and_empty_stream() -> None:
    with pytest.raises(ValueError, match="expected"):
        latent_stats_and_top(_relu_encoder(), _batches(_data(), 50), D_SAE + 1, 3)
    with pytest.raises(ValueError, match="empty"):
        latent_stats_and_top(_relu_encoder(), iter([]), D_SAE, 3)


def test_write_features_round_trips(tmp_path, codes: np.ndarray) -> None:
    features = latent_stats_and_top(
        _relu_encoder(), _batches(_data(), 64), D_SAE, 5, weak=weak_sampling(n=2)
    )
    paths = write_features(features, tmp_path / "out")
    assert [p.name for p in paths] == [STATS_FILE, TOP_FILE, WEAK_FILE]
    assert pl.read_parquet(paths[0]).equals(features.stats, null_equal=True)
    assert pl.read_parquet(paths[1]).equals(features.top)
    assert pl.read_parquet(paths[2]).equals(features.weak)
    assert len(features.weak) > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)


def _ramp_encoder(x: torch.Tensor) -> torch.Tensor:
    """Latent 0 is the input's first value itself (rows 1..N give 1..N), latent 1 never fires."""
    return torch.stack([x[:, 0], torch.zeros(len(x))], dim=1)


@pytest.mark.parametrize("batch_size", [7, 400])
def test_weak_rows_come_from_the_low_quantile_and_avoid_the_top(batch_size: int) -> None:
    n = 400
    ramp = np.zeros((n + 100, 1), dtype=np.float32)
    ramp[:n, 0] = np.arange(1, n + 1)  # 100 more rows where latent 0 does not fire
    weak = weak_sampling(n=5, quantile=0.2, sample_size=200, seed=3)
    features = latent_stats_and_top(_ramp_encoder, _batches(ramp, batch_size), 2, 4, weak=weak)
    rows = features.weak.filter(pl.col("latent") == 0).sort("rank")
    assert rows["rank"].to_list() == list(range(5))
    values = rows["activation"].to_numpy()
    # A uniform sample of 200 of the 400 firing rows: its 20% quantile is near 80 (of 1..400).
    assert (values > 0).all() and values.max() <= 110
    assert (np.diff(values) < 0).all(), "strongest weak row first"
    np.testing.assert_array_equal(rows["row"].to_numpy(), values.astype(np.int64) - 1)
    assert set(rows["row"]).isdisjoint(features.top["row"])
    assert features.weak.filter(pl.col("latent") == 1).is_empty()
    again = latent_stats_and_top(_ramp_encoder, _batches(ramp, batch_size), 2, 4, weak=weak)
    assert again.weak.equals(features.weak), "seeded: the same rows on every run"


def test_weak_rows_exclude_top_rows_of_rare_latents() -> None:
    rare = np.zeros((50, 1), dtype=np.float32)
    rare[[3, 9, 20], 0] = [1.0, 2.0, 3.0]  # three firing rows, all of them top rows
    features = latent_stats_and_top(_ramp_encoder, _batches(rare, 16), 2, 4, weak=weak_sampling())
    assert features.top.filter(pl.col("latent") == 0)["row"].to_list() == [20, 9, 3]
    assert features.weak.is_empty()


def test_weak_sampling_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="quantile"):
        weak_sampling(quantile=1.0)
    with pytest.raises(ValueError, match="sample_size"):
        weak_sampling(n=10, sample_size=5)


def test_atomic_output_leaves_old_file_when_writer_fails(tmp_path) -> None:
    target = tmp_path / "sub" / "table.parquet"
    with atomic_output(target) as tmp:
        assert tmp.suffix == ".parquet" and tmp.parent == target.parent
        tmp.write_text("first")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer crashed")
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["table.parquet"]
