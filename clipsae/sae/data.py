"""Training data access: deterministic, resumable batch order over in-memory arrays or shard stores.

The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run can rebuild the exact batch
sequence and skip to its step instead of storing iterator state.
"""

from __future__ import annotations

from collections.abc import Iterator

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


class BatchSource:
    """Rows to train on, batched in a shuffled order fixed by ``(seed, epoch)``."""

    def __init__(
        self, data: Activations, shuffle_buffer_rows: int, max_in_memory_bytes: int
    ) -> None:
        self.store: ActivationStore | None = None
        self.array: np.ndarray | None = None
        if isinstance(data, ActivationStore):
            if len(data) * data.d * 4 <= max_in_memory_bytes:
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
        """Up to ``n`` rows drawn without replacement, float32, for data statistics."""
        rows = np.sort(rng.choice(self.n_rows, size=min(n, self.n_rows), replace=False))
        if self.array is not None:
            return np.asarray(self.array[rows], dtype=np.float32)
        starts = np.cumsum([0] + [info.rows for info in self.store.meta.shards])
        pieces = []
        for i in range(len(self.store.meta.shards)):
            local = rows[(rows >= starts[i]) & (rows < starts[i + 1])] - starts[i]
            if len(local):
                pieces.append(np.asarray(self.store.shard(i)[local], dtype=np.float32))
        return np.concatenate(pieces)

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
        """Shards in random order through a shuffle buffer: rows mix across neighbouring shards."""
        pending: list[np.ndarray] = []
        n_pending = 0
        for shard in rng.permutation(len(self.store.meta.shards)):
            pending.append(np.asarray(self.store.shard(int(shard)), dtype=np.float32))
            n_pending += len(pending[-1])
            if n_pending >= self.shuffle_buffer_rows:
                batches, rest = _shuffled_batches(pending, rng, batch_size)
                yield from batches
                pending, n_pending = [rest], len(rest)
        yield from _shuffled_batches(pending, rng, batch_size)[0]


def _shuffled_batches(
    pieces: list[np.ndarray], rng: np.random.Generator, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle the buffered rows; return full batches (n, batch_size, d) and the leftover rows."""
    rows = np.concatenate(pieces)
    rows = rows[rng.permutation(len(rows))]
    n_full = len(rows) // batch_size * batch_size
    return rows[:n_full].reshape(-1, batch_size, rows.shape[1]), rows[n_full:]
