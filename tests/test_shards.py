"""The activation shard store."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipsae.activations.shards import (
    ActivationStore,
    ShardError,
    ShardWriter,
    check_finite,
    load_activations,
    subsample,
)


def write(tmp_path, data, shard_rows, chunk):
    writer = ShardWriter(
        tmp_path / "acts", data.shape[1], "float32", shard_rows, {"layer": "final"}
    )
    for start in range(0, len(data), chunk):
        writer.add(data[start : start + chunk])
    return writer.close()


@pytest.mark.parametrize(("shard_rows", "chunk", "batch"), [(7, 3, 4), (10, 25, 10), (100, 9, 33)])
def test_round_trip_and_batches_across_shard_boundaries(tmp_path, shard_rows, chunk, batch):
    data = np.random.default_rng(0).normal(size=(53, 6)).astype(np.float32)
    meta = write(tmp_path, data, shard_rows, chunk)
    assert meta.n_rows == 53 and sum(s.rows for s in meta.shards) == 53
    assert all(s.rows == shard_rows for s in meta.shards[:-1])
    store = ActivationStore(tmp_path / "acts", verify=True)
    np.testing.assert_array_equal(store.load_all(), data)
    batches = list(store.iter_batches(batch))
    assert [len(b) for b in batches[:-1]] == [batch] * (len(batches) - 1)
    np.testing.assert_array_equal(np.concatenate(batches), data)
    np.testing.assert_array_equal(load_activations(tmp_path / "acts"), data)
    assert json.loads((tmp_path / "acts" / "meta.json").read_text())["extra"] == {"layer": "final"}


def test_non_finite_rows_are_named(tmp_path):
    data = np.zeros((10, 3), dtype=np.float32)
    data[7, 1] = np.nan
    writer = ShardWriter(tmp_path / "acts", 3, shard_rows=4)
    writer.add(data[:5])
    with pytest.raises(ShardError, match="row 7 has NaN or Inf"):
        writer.add(data[5:])


def test_non_finite_check_goes_a_batch_at_a_time_and_counts_every_bad_row():
    data = np.zeros((10_000, 2), dtype=np.float32)
    data[[5000, 9999], 0] = [np.inf, np.nan]
    with pytest.raises(ShardError, match=r"x: row 5010 has NaN or Inf values \(2 rows in all\)"):
        check_finite(data, "x", first_row=10)
    check_finite(data[:5000], "x")


def test_wrong_width_and_tampering_and_unfinished_directories_are_refused(tmp_path):
    data = np.ones((8, 4), dtype=np.float32)
    write(tmp_path, data, 4, 8)
    with pytest.raises(ShardError, match="width 4"):
        ShardWriter(tmp_path / "other", 4).add(np.ones((2, 5)))
    np.save(tmp_path / "acts" / "shard-00001.npy", 2 * data[:4])
    with pytest.raises(ShardError, match="checksum mismatch"):
        ActivationStore(tmp_path / "acts", verify=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShardError, match="did not finish"):
        ActivationStore(tmp_path / "empty")


def test_a_subsample_is_seeded_distinct_and_the_same_from_a_store_or_an_array(tmp_path):
    data = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    writer = ShardWriter(tmp_path, d=3, shard_rows=7)
    writer.add(data)
    writer.close()
    store = ActivationStore(tmp_path)
    rows = subsample(store, n=20, seed=3)
    assert np.array_equal(rows, subsample(data, n=20, seed=3))
    first = rows[:, 0] / 3
    assert len(set(first)) == 20 and list(first) == sorted(first)  # distinct, in file order
    assert not np.array_equal(rows, subsample(store, n=20, seed=4))
    with pytest.raises(ValueError, match="max_images 51 exceeds the 50 rows"):
        subsample(store, n=51, seed=0)
