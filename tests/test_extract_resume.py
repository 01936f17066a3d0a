"""A killed or crashed extraction resumes from its last intact shard and ends byte-identical.

The kill is real: extraction runs in a subprocess that is SIGKILLed once its journal lists a
complete shard. Crashes in-process (an exception at a chosen image) cover the other ways back:
a corrupted shard, a changed job, and skips recorded before the crash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from clipsae.activations.extract import JOURNAL_FILE, PARTIAL_SUFFIX, extract_activations
from clipsae.data import BadImage, ImageDataset, Record, build_dataset
from clipsae.models.clip import load_clip

N_IMAGES = 96
SHARD_ROWS = 16
BATCH = 8  # divides SHARD_ROWS, so a resumed run batches the remaining images as a full run does
SPEC = {"source": "synthetic", "n_train": N_IMAGES, "n_test": 0, "image_size": 32, "seed": 3}

# Extraction in a child process, slowed per image so that the parent can kill it mid-way.
CHILD = """
import sys, time, torch
from clipsae.models.clip import load_clip
from clipsae.data import build_dataset
from clipsae.activations.extract import extract_activations

torch.manual_seed(0)
clip = load_clip("clipsae-tiny-vit", "none", device="cpu")
ds = build_dataset("s", {spec!r})
opened = ds.open_image
ds.open_image = lambda record: (time.sleep(0.05), opened(record))[1]
extract_activations(
    clip, ds, ds.records(), "final", sys.argv[1], batch_size={batch}, shard_rows={rows}
)
"""


class _Counting(ImageDataset):
    """Wraps a dataset: counts opened images, makes chosen ids bad, and can crash at one id."""

    def __init__(self, inner: ImageDataset, bad: set[str] = frozenset(), crash_at: str = ""):
        super().__init__(inner.name, inner.class_names)
        self.inner, self.bad, self.crash_at = inner, bad, crash_at
        self.opened: list[str] = []

    def records(self) -> list[Record]:
        return self.inner.records()

    def open_image(self, record: Record) -> Image.Image:
        if record.id == self.crash_at:
            raise RuntimeError(f"simulated crash at {record.id}")
        self.opened.append(record.id)
        if record.id in self.bad:
            raise BadImage("decode_error", "chosen to be bad by the test")
        return self.inner.open_image(record)


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)  # the same weights as the child process
    return load_clip("clipsae-tiny-vit", "none", device="cpu")


def _run(clip, dataset: ImageDataset, out: Path, shard_rows: int = SHARD_ROWS) -> None:
    records = dataset.records()
    extract_activations(clip, dataset, records, "final", out, BATCH, shard_rows=shard_rows)


def _assert_same_outputs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        if name.endswith(".parquet"):
            assert pl.read_parquet(a / name).equals(pl.read_parquet(b / name)), name
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _journal(out: Path) -> dict | None:
    path = out.with_name(out.name + PARTIAL_SUFFIX) / JOURNAL_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _kill_after_first_shard(out: Path) -> dict:
    script = CHILD.format(spec=SPEC, batch=BATCH, rows=SHARD_ROWS)
    child = subprocess.Popen([sys.executable, "-c", script, str(out)])
    try:
        deadline = time.monotonic() + 120
        while (journal := _journal(out)) is None or not journal["shards"]:
            assert child.poll() is None, "the extraction ended before it could be killed"
            assert time.monotonic() < deadline, "no complete shard after 120 s"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return journal


def test_sigkill_then_rerun_resumes_without_recomputing(tmp_path, clip):
    reference = tmp_path / "reference"
    _run(clip, build_dataset("s", SPEC), reference)

    out = tmp_path / "killed"
    journal = _kill_after_first_shard(out)
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    assert not out.exists()
    done = [s["file"] for s in journal["shards"]]
    stamps = {f: (partial / f).stat().st_mtime_ns for f in done}

    rerun = _Counting(build_dataset("s", SPEC))
    _run(clip, rerun, out)

    end = journal["shards"][-1]["end"]
    assert 0 < end < N_IMAGES
    # The journaled shards were not recomputed: the rerun opened exactly the images after them
    # (shards end on a batch boundary here, as there are no bad images).
    assert rerun.opened == [r.id for r in rerun.records()[end:]]
    assert {f: (out / f).stat().st_mtime_ns for f in done} == stamps
    assert not partial.exists()
    _assert_same_outputs(out, reference)


def test_crash_with_skips_resumes_with_rows_aligned(tmp_path, clip):
    base = build_dataset("s", SPEC)
    ids = [r.id for r in base.records()]
    bad = {ids[3], ids[20], ids[21], ids[49], ids[70]}
    reference = tmp_path / "reference"
    _run(clip, _Counting(base, bad), reference)

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(clip, _Counting(base, bad, crash_at=ids[60]), out)
    journal = _journal(out)
    # Shards of 16 good rows: records 0-16 (3 is bad), 17-34 (20, 21 bad), 35-51 (49 bad).
    assert [s["end"] for s in journal["shards"]] == [17, 35, 52]

    rerun = _Counting(base, bad)
    _run(clip, rerun, out)
    # Record 52 is in the batch of records 48..55, which is re-read whole (rows 48-51 dropped,
    # and bad record 49 is not listed twice).
    assert rerun.opened == ids[48:]
    _assert_same_outputs(out, reference)
    skipped = pl.read_parquet(out / "skipped.parquet")
    assert skipped["id"].to_list() == sorted(bad, key=ids.index)
    index = pl.read_parquet(out / "index.parquet")
    assert index["id"].to_list() == [i for i in ids if i not in bad]


def test_corrupted_shard_is_recomputed_from_there(tmp_path, clip):
    base = build_dataset("s", SPEC)
    ids = [r.id for r in base.records()]
    reference = tmp_path / "reference"
    _run(clip, base, reference)

    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        _run(clip, _Counting(base, crash_at=ids[80]), out)
    shard = out.with_name(out.name + PARTIAL_SUFFIX) / "shard-00002.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))

    rerun = _Counting(base)
    _run(clip, rerun, out)
    assert rerun.opened == ids[2 * SHARD_ROWS :]
    _assert_same_outputs(out, reference)


def test_a_different_job_does_not_reuse_the_partial_shards(tmp_path, clip):
    base = build_dataset("s", SPEC)
    ids = [r.id for r in base.records()]
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        _run(clip, _Counting(base, crash_at=ids[50]), out)
    assert len(_journal(out)["shards"]) == 3

    rerun = _Counting(base)
    _run(clip, rerun, out, shard_rows=SHARD_ROWS * 2)
    assert rerun.opened == ids
    reference = tmp_path / "reference"
    _run(clip, base, reference, shard_rows=SHARD_ROWS * 2)
    _assert_same_outputs(out, reference)
    assert len(np.load(out / "shard-00000.npy")) == 2 * SHARD_ROWS
