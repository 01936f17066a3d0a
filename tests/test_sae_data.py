"""The trainer's memory cap: what ``MemoryPlan`` allows, and the streaming source keeping to it."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from clipsae.activations.shards import ActivationStore, ShardWriter
from clipsae.sae import TopKConfig, TrainConfig, train_sae
from clipsae.sae.data import STATS_COPIES, BatchSource, MemoryPlan

D = 32


def _store(path, n: int, shard_rows: int = 700, dtype: str = "float32") -> ActivationStore:
    writer = ShardWriter(path, D, dtype=dtype, shard_rows=shard_rows)
    rng = np.random.default_rng(0)
    for start in range(0, n, 5000):
        writer.add(rng.normal(size=(min(5000, n - start), D)).astype(np.float32))
    writer.close()
    return ActivationStore(path)


def test_plan_sizes_every_buffer_from_the_cap() -> None:
    row = 4 * D
    cap = 1 << 20
    plan = MemoryPlan.from_cap(
        cap, D, 64, shuffle_buffer_rows=1 << 20, val_rows=1 << 20, stats_rows=1 << 20
    )
    assert plan.fits and plan.in_memory_bytes == cap // 2
    assert plan.buffer_rows * (row + 16) <= cap // 2 < (plan.buffer_rows + 1) * (row + 16)
    assert plan.val_rows * row <= cap // 4 and plan.stats_rows * STATS_COPIES * row <= cap // 4
    roomy = MemoryPlan.from_cap(
        1 << 30, D, 64, shuffle_buffer_rows=500, val_rows=300, stats_rows=200
    )
    assert (roomy.buffer_rows, roomy.val_rows, roomy.stats_rows) == (500, 300, 200)
    tiny = MemoryPlan.from_cap(0, D, 64, shuffle_buffer_rows=500, val_rows=300, stats_rows=200)
    assert (tiny.buffer_rows, tiny.val_rows, tiny.stats_rows, tiny.fits) == (64, 64, 64, False)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_streaming_holds_one_buffer_whatever_the_data_size(tmp_path, dtype: str) -> None:
    """Peak traced (numpy) memory of an epoch and of a sample: the shuffle buffer and its index
    arrays, or the sample, plus two batches; the same for 20k and 60k rows, and float16 shards
    cast a batch at a time. The old stream held up to three buffers and a float16 shard's
    float32 copy (2.5x the bound here; float16 3.3x), the old sample two copies."""
    buffer_rows, batch = 2000, 100
    peaks = []
    for n in (20_000, 60_000):
        source = BatchSource(_store(tmp_path / f"{n}", n, dtype=dtype), buffer_rows, 0)
        tracemalloc.start()
        seen = sum(len(b) for b in source.epoch(0, batch, seed=0))
        _, epoch_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert seen == n // batch * batch
        tracemalloc.start()
        assert source.sample(1000, np.random.default_rng(0)).shape == (1000, D)
        _, sample_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peaks.append(epoch_peak)
        # 64 KiB for Python objects: the memory maps, the shard list, the generators.
        assert epoch_peak <= buffer_rows * (4 * D + 16) + 2 * batch * 4 * D + (64 << 10)
        assert sample_peak <= 1000 * STATS_COPIES * 4 * D  # the plan's bound
    assert peaks[1] <= peaks[0] + (64 << 10)


def test_streaming_buffers_are_exact_and_cross_shards(tmp_path) -> None:
    """Buffers of exactly ``shuffle_buffer_rows`` rows, filled from the shards in their random
    order across shard boundaries (700-row shards, 1000-row buffers): the first ten batches are
    a shuffle of the first 1000 rows of that order, and every batch is its own array."""
    store = _store(tmp_path, 5000, shard_rows=700)
    batches = list(BatchSource(store, 1000, 0).epoch(0, 100, seed=0))
    assert len(batches) == 50 and all(b.flags.owndata for b in batches)
    shard_order = np.random.default_rng([0, 0]).permutation(len(store.meta.shards))
    in_order = np.concatenate([store.shard(int(i)) for i in shard_order])
    first = np.concatenate(batches[:10])
    assert not np.array_equal(first, in_order[:1000])
    assert np.array_equal(np.sort(first, axis=0), np.sort(in_order[:1000], axis=0))
    assert np.array_equal(np.sort(np.concatenate(batches), axis=0), np.sort(in_order, axis=0))


def test_training_over_the_cap_never_loads_a_store_whole(tmp_path, monkeypatch) -> None:
    """Training and validation stores larger than half the cap are streamed and sampled through
    their memory maps, never loaded whole (validation was loaded whole when it fitted the cap)."""
    train = _store(tmp_path / "train", 3000)
    val = _store(tmp_path / "val", 1000)

    def refuse(*_args, **_kwargs):
        raise AssertionError("load_all called")

    monkeypatch.setattr(ActivationStore, "load_all", refuse)
    cap = 3000 * 4 * D  # the training rows are twice half the cap; validation fits it
    tcfg = TrainConfig(batch_size=100, max_in_memory_bytes=cap, shuffle_buffer_rows=10_000)
    summary = train_sae(train, TopKConfig(d_in=D, d_sae=64, k=4), tcfg, tmp_path / "sae", val=val)
    assert summary["completed"] and summary["steps"] == 30
