"""Training data access: deterministic, resumable batch order over in-memory arrays or shard stores.

The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run can rebuild the exact batch
sequence and skip to its step instead of storing iterator state.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

import numpy as np

from clipsae.activations.shards import ActivationStore, check_finite, check_same_source

Activations = np.ndarray | ActivationStore


def check_inputs(train: Activations, val: Activations | None) -> None:
    """Refuse activations that would waste a run: NaN or Inf rows (the loss turns NaN, often hours
    in), shards changed since extraction, and validation shards of another model or layer (a
    meaningless validation FVU). Re-run on every resume, as files can change between attempts;
    the cost is one SHA-256 and one isfinite pass over the data (0.3-0.9 s for 200k x 512
    float32, about a tenth of one training epoch on those rows; see docs/faults.md).
    """
    for data, role in ((train, "training"), (val, "validation")):
        if isinstance(data, ActivationStore):
            data.verify()
            data.check_all_finite()
        elif data is not None:
            check_finite(data, f"{role} activations")
    if isinstance(train, ActivationStore) and isinstance(val, ActivationStore):
        check_same_source(train, val)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_freed_memory() -> None:
    """Return the C heap's free memory to the system (glibc's ``malloc_trim``; a no-op
    elsewhere). glibc serves blocks under its mmap threshold, which rises to 32 MiB once a
    block that size is freed, from a heap it rarely shrinks, so a freed shuffle buffer or
    statistics sample would stay resident beside the next one and the cap would not hold."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


# Bytes of index arrays per buffered row (a permutation and its inverse, int64), counted with
# the row itself when the shuffle buffer is sized from the cap.
_INDEX_BYTES = 16
# Float32 copies of the data-statistics sample alive at once while it is used: the sample itself
# and its float64 copy (two float32 sizes) in ``geometric_median``, plus that function's chunked
# temporaries (at most one more float32 size). Drawing the sample costs less from d = 34 on:
# NumPy's ``choice`` without replacement shuffles all row positions (int64) when the sample is
# over 1/50 of the rows, at most 400 bytes per sampled row, besides the sample itself.
STATS_COPIES = 4


@dataclass(frozen=True)
class MemoryPlan:
    """How many activation rows the trainer may hold, from ``max_in_memory_bytes`` (the cap).

    The cap bounds the activation rows the trainer itself allocates, working copies included,
    at any one time:

    * half of it for the training rows: all of them when the shard store fits in that half
      (``in_memory_bytes``, with an epoch's permutation of the rows), else a shuffle buffer of
      ``buffer_rows`` (``shuffle_buffer_rows`` cut to fit, with its index arrays);
    * a quarter for the validation rows, held through training (``val_rows`` cut to fit);
    * a quarter for the data-statistics sample (``stats_rows`` cut to fit ``STATS_COPIES``
      float32 copies): the normalisation constant, the decoder bias and ``dict_init: data``
      before the first step, the inference calibration (BatchTopK's threshold) after the last.

    Every count is at least one batch (nothing smaller can train), so a cap below about four
    batches of rows cannot be met (``fits`` is False). Not bounded by the cap: the model, its
    gradients and optimiser state, one batch's activations through the model (``batch_size`` x
    ``d_sae``), the per-step log (a few hundred bytes a step) and arrays passed in by the
    caller (used as they are, never copied whole).
    """

    cap: int
    in_memory_bytes: int
    buffer_rows: int
    val_rows: int
    stats_rows: int
    fits: bool

    @classmethod
    def from_cap(
        cls,
        cap: int,
        d: int,
        batch_size: int,
        *,
        shuffle_buffer_rows: int,
        val_rows: int,
        stats_rows: int,
    ) -> MemoryPlan:
        row = 4 * d
        buffer = max(batch_size, min(shuffle_buffer_rows, cap // 2 // (row + _INDEX_BYTES)))
        val = max(batch_size, min(val_rows, cap // 4 // row))
        stats = max(batch_size, min(stats_rows, cap // 4 // (STATS_COPIES * row)))
        need = buffer * (row + _INDEX_BYTES) + val * row + stats * STATS_COPIES * row
        return cls(cap, cap // 2, buffer, val, stats, fits=need <= cap)


class BatchSource:
    """Rows to train on, batched in a shuffled order fixed by ``(seed, epoch)``.

    A shard store is loaded whole when it fits in ``max_in_memory_bytes`` together with an
    epoch's permutation of its rows (8 bytes a row); otherwise it is
    streamed through a shuffle buffer of ``shuffle_buffer_rows`` (at least one batch), the only
    rows then held besides the batch being trained on.
    """

    def __init__(
        self, data: Activations, shuffle_buffer_rows: int, max_in_memory_bytes: int
    ) -> None:
        self.store: ActivationStore | None = None
        self.array: np.ndarray | None = None
        if isinstance(data, ActivationStore):
            # The rows and the epoch's permutation of them (int64).
            if len(data) * (data.d * 4 + 8) <= max_in_memory_bytes:
                self.array = data.load_all("float32")
            else:
                self.store = data
        else:
            if data.ndim != 2:
                raise ValueError(f"expected a 2-D activation array, got shape {data.shape}")
            self.array = data
        self.shuffle_buffer_rows = shuffle_buffer_rows

    @property
    def n_rows(self) -> int:
        return len(self.array) if self.array is not None else len(self.store)

    @property
    def d(self) -> int:
        return self.array.shape[1] if self.array is not None else self.store.d

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches only (every step sees the same number of rows), at least one."""
        return max(1, self.n_rows // batch_size)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``n`` rows drawn without replacement, float32, for data statistics; from a
        store, read through the memory map into the one array returned."""
        rows = np.sort(rng.choice(self.n_rows, size=min(n, self.n_rows), replace=False))
        if self.array is not None:
            return np.asarray(self.array[rows], dtype=np.float32)
        out = np.empty((len(rows), self.d), dtype=np.float32)
        done, start = 0, 0
        for i, info in enumerate(self.store.meta.shards):
            local = rows[(rows >= start) & (rows < start + info.rows)] - start
            if len(local):
                out[done : done + len(local)] = self.store.shard(i)[local]
                done += len(local)
            start += info.rows
        return out

    def epoch(self, epoch: int, batch_size: int, seed: int, skip: int = 0) -> Iterator[np.ndarray]:
        """Batches of epoch ``epoch`` after the first ``skip`` ones."""
        rng = np.random.default_rng([seed, epoch])
        if self.array is not None:
            batches = self._array_epoch(rng, batch_size)
        else:
            batches = self._stream_epoch(rng, batch_size)
        for i, batch in enumerate(batches):
            if i >= skip:
                yield batch

    def _array_epoch(self, rng: np.random.Generator, batch_size: int) -> Iterator[np.ndarray]:
        order = rng.permutation(self.n_rows)
        size = min(batch_size, self.n_rows)
        for i in range(self.steps_per_epoch(batch_size)):
            yield np.asarray(self.array[np.sort(order[i * size : (i + 1) * size])], np.float32)

    def _stream_epoch(self, rng: np.random.Generator, batch_size: int) -> Iterator[np.ndarray]:
        """Shards in random order through a shuffle buffer of exactly ``shuffle_buffer_rows``
        rows (the last one smaller), filled across shard boundaries: rows mix across
        neighbouring shards. Batches are copies, so the buffer is freed before the next one is
        filled even while the caller still holds the last batch."""
        capacity = max(self.shuffle_buffer_rows, batch_size)
        pending: list[np.ndarray] = []  # memory-mapped slices, and the last buffer's leftover
        n_pending = 0
        for shard in rng.permutation(len(self.store.meta.shards)):
            rows = self.store.shard(int(shard))
            start = 0
            while start < len(rows):
                take = min(len(rows) - start, capacity - n_pending)
                pending.append(rows[start : start + take])
                n_pending, start = n_pending + take, start + take
                if n_pending == capacity:
                    rest = yield from _shuffled_batches(pending, rng, batch_size, self.d)
                    pending, n_pending = [rest], len(rest)
                    release_freed_memory()  # the buffer just emptied
        yield from _shuffled_batches(pending, rng, batch_size, self.d)


def _shuffled_batches(
    pieces: list[np.ndarray], rng: np.random.Generator, batch_size: int, d: int
) -> Generator[np.ndarray, None, np.ndarray]:
    """Yield the buffered rows, shuffled, as full batches (copies); return the leftover rows.

    The rows are written straight to their shuffled positions, one float32 buffer in all (the
    shuffle of ``np.concatenate(pieces)[rng.permutation(n)]``, without its two copies)."""
    n = sum(len(piece) for piece in pieces)
    order = rng.permutation(n)
    target = np.empty(n, dtype=np.int64)
    target[order] = np.arange(n)
    del order
    rows = np.empty((n, d), dtype=np.float32)
    done = 0
    for piece in pieces:  # a batch at a time: a float16 shard is cast a batch at a time
        for start in range(0, len(piece), batch_size):
            chunk = piece[start : start + batch_size]
            rows[target[done : done + len(chunk)]] = chunk
            done += len(chunk)
    del target
    n_full = n // batch_size * batch_size
    for start in range(0, n_full, batch_size):
        yield rows[start : start + batch_size].copy()
    return rows[n_full:].copy()
