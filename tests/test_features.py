"""Streaming statistics and top-k against brute force on the full code matrix."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from clipsae.interpret.features import STATS_FILE, TOP_FILE, latent_stats_and_top, write_features
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
    _, top = latent_stats_and_top(_relu_encoder(), _batches(_data(), batch_size), D_SAE, top_k)
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
    _, top = latent_stats_and_top(_relu_encoder(), _batches(_data(), 50), D_SAE, 4)
    assert set(top["latent"].to_list()).isdisjoint({0, 1})
    assert (top["activation"] > 0).all()
    assert top.schema == {
        "latent": pl.Int64,
        "rank": pl.Int64,
        "row": pl.Int64,
        "activation": pl.Float32,
    }


def test_stats_match_numpy(codes: np.ndarray) -> None:
    stats, _ = latent_stats_and_top(_relu_encoder(), _batches(_data(), 33), D_SAE, 3)
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
    stats, top = latent_stats_and_top(_relu_encoder(), _batches(_data(), 64), D_SAE, 5)
    stats_path, top_path = write_features(stats, top, tmp_path / "out")
    assert (stats_path.name, top_path.name) == (STATS_FILE, TOP_FILE)
    assert pl.read_parquet(stats_path).equals(stats, null_equal=True)
    assert pl.read_parquet(top_path).equals(top)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([STATS_FILE, TOP_FILE])


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
