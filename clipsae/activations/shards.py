"""Activation shard store: fixed-size ``.npy`` shards plus a ``meta.json`` written last.

Shards are plain NumPy files so any tool can ``np.load(..., mmap_mode="r")`` them. ``meta.json`` is
written only after every shard is complete, so a directory without it is an unfinished extraction,
and the per-shard SHA-256 lets a reader detect shards that were swapped or truncated since.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from clipsae.runtime.checksum import file_sha256

META_FILE = "meta.json"
FORMAT_VERSION = 1

# Rows per batch when a pass streams over stored activations (evaluation, features, naming).
EVAL_BATCH = 4096


class ShardError(ValueError):
    """Shards that cannot be trusted: non-finite values, wrong shapes or a changed file."""


@dataclass
class ShardInfo:
    file: str
    rows: int
    sha256: str


@dataclass
class ShardMeta:
    d: int
    dtype: str
    n_rows: int
    shard_rows: int
    shards: list[ShardInfo]
    extra: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @classmethod
    def read(cls, directory: Path) -> ShardMeta:
        path = Path(directory) / META_FILE
        if not path.exists():
            raise ShardError(f"{path} is missing: the extraction into {directory} did not finish")
        raw = json.loads(path.read_text())
        raw["shards"] = [ShardInfo(**s) for s in raw["shards"]]
        return cls(**raw)

    def write(self, directory: Path) -> None:
        _atomic_write_text(Path(directory) / META_FILE, json.dumps(asdict(self), indent=2))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_finite(batch: np.ndarray, where: str, first_row: int = 0) -> None:
    """Raise naming the first non-finite row: NaNs in activations poison every later step.
    Checked ``EVAL_BATCH`` rows at a time, so the check of a shard or a large array costs a
    batch's worth of memory, not a byte per value of the whole."""
    bad = [
        start + np.flatnonzero(~np.isfinite(batch[start : start + EVAL_BATCH]).all(axis=1))
        for start in range(0, len(batch), EVAL_BATCH)
    ]
    n_bad = sum(len(rows) for rows in bad)
    if n_bad:
        row = first_row + int(next(rows[0] for rows in bad if len(rows)))
        raise ShardError(f"{where}: row {row} has NaN or Inf values ({n_bad} rows in all)")


class ShardWriter:
    """Buffers rows and writes them as ``shard-NNNNN.npy`` files of ``shard_rows`` rows each."""

    def __init__(
        self,
        directory: Path,
        d: int,
        dtype: str = "float32",
        shard_rows: int = 65536,
        extra: dict | None = None,
        existing: Sequence[ShardInfo] = (),
    ) -> None:
        """``existing``: complete shards already in ``directory`` (a resumed job) to follow."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # What ``close`` writes as meta.json, kept up to date as each shard is completed.
        self.meta = ShardMeta(
            d=d,
            dtype=np.dtype(dtype).name,
            n_rows=sum(info.rows for info in existing),
            shard_rows=shard_rows,
            shards=list(existing),
            extra=dict(extra or {}),
        )
        self._buffer: list[np.ndarray] = []
        self._buffered = 0

    @property
    def n_rows(self) -> int:
        """Rows in complete shards so far."""
        return self.meta.n_rows

    def shard_written(self, info: ShardInfo) -> None:
        """Called once a shard is complete on disk; a resumable job records its progress here."""

    def add(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch)
        if batch.ndim != 2 or batch.shape[1] != self.meta.d:
            raise ShardError(
                f"expected rows of width {self.meta.d}, got an array of shape {batch.shape}"
            )
        check_finite(batch, f"activations for {self.directory}", self.n_rows + self._buffered)
        self._buffer.append(batch.astype(self.meta.dtype, copy=False))
        self._buffered += len(batch)
        while self._buffered >= self.meta.shard_rows:
            self._flush(self.meta.shard_rows)

    def _flush(self, rows: int) -> None:
        data = np.concatenate(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        head, tail = data[:rows], data[rows:]
        self._buffer = [tail] if len(tail) else []
        self._buffered = len(tail)
        name = f"shard-{len(self.meta.shards):05d}.npy"
        tmp = self.directory / (name + ".tmp.npy")
        np.save(tmp, np.ascontiguousarray(head))
        os.replace(tmp, self.directory / name)
        info = ShardInfo(name, len(head), file_sha256(self.directory / name))
        self.meta.shards.append(info)
        self.meta.n_rows += len(head)
        self.shard_written(info)

    def close(self) -> ShardMeta:
        if self._buffered:
            self._flush(self._buffered)
        self.meta.write(self.directory)
        return self.meta


# meta.json ``extra`` keys that identify the activations' source: train and validation shards
# that differ in one are from different models or layers, so a validation FVU would be meaningless.
SOURCE_KEYS = ("arch", "pretrained", "seed", "layer")


class ActivationStore:
    """Read side of a shard directory; streams batches without loading everything."""

    def __init__(self, directory: Path, verify: bool = False) -> None:
        self.directory = Path(directory)
        self.meta = ShardMeta.read(self.directory)
        for info in self.meta.shards:
            path = self.directory / info.file
            if not path.exists():
                raise ShardError(f"{path} is listed in {META_FILE} but missing")
        if verify:
            self.verify()

    def verify(self) -> None:
        """Compare every shard with its checksum in ``meta.json``: a shard overwritten by another
        run has the right shape and would otherwise be trained on silently."""
        for info in self.meta.shards:
            path = self.directory / info.file
            if file_sha256(path) != info.sha256:
                raise ShardError(f"{path} changed since it was written (checksum mismatch)")

    def check_all_finite(self) -> None:
        """Raise naming the shard file and its first non-finite row; one shard in memory at a
        time, so this works on stores far larger than RAM."""
        for i, info in enumerate(self.meta.shards):
            check_finite(self.shard(i), str(self.directory / info.file))

    @property
    def d(self) -> int:
        return self.meta.d

    def __len__(self) -> int:
        return self.meta.n_rows

    def shard(self, i: int) -> np.ndarray:
        info = self.meta.shards[i]
        arr = np.load(self.directory / info.file, mmap_mode="r")
        if arr.shape != (info.rows, self.d):
            raise ShardError(
                f"{self.directory / info.file} has shape {arr.shape}, "
                f"meta.json says {(info.rows, self.d)}"
            )
        return arr

    def iter_batches(self, batch_size: int, dtype: str = "float32") -> Iterator[np.ndarray]:
        """Yield consecutive ``batch_size`` rows (the last batch may be short), in file order."""
        pending: list[np.ndarray] = []
        n_pending = 0
        for i in range(len(self.meta.shards)):
            arr = self.shard(i)
            for start in range(0, len(arr), batch_size):
                piece = np.asarray(arr[start : start + batch_size], dtype=dtype)
                pending.append(piece)
                n_pending += len(piece)
                if n_pending >= batch_size:
                    data = np.concatenate(pending)
                    yield data[:batch_size]
                    rest = data[batch_size:]
                    pending, n_pending = ([rest], len(rest)) if len(rest) else ([], 0)
        if n_pending:
            yield np.concatenate(pending)

    def take(self, rows: np.ndarray, dtype: str = "float32") -> np.ndarray:
        """The given rows (sorted, distinct positions), read shard by shard through the memory
        map, so a subsample costs its own size in memory, not the store's."""
        starts = np.cumsum([0, *(info.rows for info in self.meta.shards)])
        pieces = []
        for i in range(len(self.meta.shards)):
            local = rows[(rows >= starts[i]) & (rows < starts[i + 1])] - starts[i]
            if len(local):
                pieces.append(np.asarray(self.shard(i)[local], dtype=dtype))
        return np.concatenate(pieces) if pieces else np.zeros((0, self.d), dtype=dtype)

    def load_all(self, dtype: str = "float32") -> np.ndarray:
        """Every row in one array, each shard read (and cast) straight into it: one copy of the
        data in memory, not one per shard plus their concatenation."""
        out = np.empty((len(self), self.d), dtype=dtype)
        start = 0
        for i, info in enumerate(self.meta.shards):
            out[start : start + info.rows] = self.shard(i)
            start += info.rows
        return out


def check_same_source(train: ActivationStore, val: ActivationStore) -> None:
    """Refuse validation shards that cannot describe the training shards' activations.

    Width and the ``SOURCE_KEYS`` in ``extra`` must agree where both record them. Storage dtype
    may differ between float types (both are read as float32, float16 rounding is ~1e-3
    relative, far below any FVU difference worth reading), but not between kinds of number.
    """
    ours, theirs = train.meta, val.meta
    fields = {"d": (ours.d, theirs.d), "dtype": (ours.dtype, theirs.dtype)}
    fields |= {
        f"extra.{key}": (ours.extra[key], theirs.extra[key])
        for key in SOURCE_KEYS
        if key in ours.extra and key in theirs.extra
    }
    for name, (mine, other) in fields.items():
        agree = _same_kind(mine, other) if name == "dtype" else mine == other
        if not agree:
            raise ShardError(
                f"training shards {train.directory} and validation shards {val.directory} come "
                f"from different runs: {META_FILE} {name} is {mine!r} vs {other!r}"
            )


def _same_kind(a: str, b: str) -> bool:
    return np.dtype(a).kind == np.dtype(b).kind


NPY_MAGIC = b"\x93NUMPY"


def load_activations(path: Path, dtype: str = "float32") -> np.ndarray:
    """Load a single ``.npy`` file or a whole shard directory into memory, checked here because
    only here is the file known that an error should name: each error says which file and what
    is wrong with it, rather than NumPy's guess (a text file is "pickled data" to it)."""
    path = Path(path)
    if path.is_dir():
        store = ActivationStore(path)
        store.check_all_finite()
        return store.load_all(dtype)
    arr = _open_npy(path)
    if arr.ndim != 2:
        raise ShardError(
            f"{path}: expected a 2-D array of activations (rows x width), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ShardError(f"{path}: no activations in it (shape {arr.shape})")
    if arr.dtype.kind not in "fiu":
        raise ShardError(f"{path}: expected numbers, got an array of dtype {arr.dtype}")
    check_finite(arr, str(path))
    return np.asarray(arr, dtype=dtype)


def _open_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise ShardError(f"{path} does not exist (expected a .npy file or a shard directory)")
    with open(path, "rb") as fh:
        head = fh.read(len(NPY_MAGIC))
    if head != NPY_MAGIC:
        raise ShardError(
            f"{path} is not a NumPy .npy file (it starts with {head!r}, not {NPY_MAGIC!r})"
        )
    try:
        return np.load(path, mmap_mode="r")
    except ValueError as exc:  # a truncated header, or an object array (pickles are refused)
        raise ShardError(f"{path}: not a readable .npy array ({exc})") from exc


def open_activations(path: Path) -> ActivationStore | np.ndarray:
    """A shard directory streams (the trainer loads it if it fits); a ``.npy`` loads at once."""
    path = Path(path)
    return ActivationStore(path) if path.is_dir() else load_activations(path)


def sample_positions(total: int, *, n: int, seed: int) -> np.ndarray:
    """``n`` distinct row positions of ``total`` drawn with ``seed``, sorted."""
    if n > total:
        raise ValueError(f"max_images {n} exceeds the {total} rows of the split")
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def subsample(data: ActivationStore | np.ndarray, *, n: int, seed: int) -> np.ndarray:
    """``n`` distinct rows drawn with ``seed``, in their original order; the same ``seed`` draws
    the same rows, so SAEs that differ only in their own seed see the same subset."""
    rows = sample_positions(len(data), n=n, seed=seed)
    if isinstance(data, ActivationStore):
        return data.take(rows)
    return np.asarray(data[rows], dtype="float32")


def batches_of(data: ActivationStore | np.ndarray, size: int = EVAL_BATCH) -> Iterator[np.ndarray]:
    if isinstance(data, ActivationStore):
        return data.iter_batches(size)
    return (data[i : i + size] for i in range(0, len(data), size))
