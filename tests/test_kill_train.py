"""A SIGKILLed SAE training resumes from its last periodic checkpoint and ends bit-identical.

The kill is real: training runs in a subprocess, slowed per step so the parent can kill it at a
random moment after the first checkpoint appears. The same command is then run again, and every
output is compared with an uninterrupted run of the same settings (CPU, same seed).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from clipsae.activations.shards import ActivationStore, ShardWriter
from clipsae.sae import TopKConfig, TrainConfig, train_sae
from clipsae.sae.train import CHECKPOINT_FILE

D = 16
CHECKPOINT_EVERY = 10
STEP_SECONDS = 0.02  # the child's per-step delay: ~2.4 s of training for the kill to land in
CFG = TopKConfig(d_in=D, d_sae=64, k=4)
OUTPUTS = ("sae_weights.safetensors", "sparsity.safetensors")

# Training in a child process, exactly as a job would run it, plus a sleep per step.
CHILD = """
import logging, sys, time
import clipsae.sae.train as trainer
from clipsae.sae import SAEConfig, TrainConfig, train_sae
from clipsae.activations.shards import ActivationStore

logging.basicConfig(level=logging.INFO)
lr_at = trainer.lr_at
trainer.lr_at = lambda *args: (time.sleep({delay}), lr_at(*args))[1]
train, val, out, cfg, tcfg = sys.argv[1:]
train_sae(
    ActivationStore(train), SAEConfig.from_json(cfg), TrainConfig.from_json(tcfg), out,
    val=ActivationStore(val), device="cpu",
)
"""


def _write_shards(directory: Path, n: int, seed: int) -> Path:
    """Low-rank rows plus noise, in shards of 250 rows so the streaming path crosses shards."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, 6)) @ rng.normal(size=(6, D)) + 0.1 * rng.normal(size=(n, D))
    writer = ShardWriter(directory, D, shard_rows=250, extra={"arch": "test", "layer": "final"})
    writer.add(rows.astype(np.float32))
    writer.close()
    return directory


def _tcfg(streaming: bool) -> TrainConfig:
    return TrainConfig(
        lr=3e-3,
        batch_size=50,
        epochs=3,  # 120 steps
        warmup_frac=5 / 120,
        dead_steps_threshold=4,
        resample_every=15,
        val_every=7,
        checkpoint_every=CHECKPOINT_EVERY,
        shuffle_buffer_rows=500,
        # Streaming: 2000 rows are over half the cap; the 500-row buffer fits in it.
        max_in_memory_bytes=100_000 if streaming else 4 << 30,
    )


def _checkpoint_step(path: Path) -> int:
    with safe_open(path, framework="pt") as fh:
        return json.loads(fh.metadata()["state"])["step"]


def _child(train: Path, val: Path, out: Path, tcfg: TrainConfig) -> subprocess.Popen:
    script = CHILD.format(delay=STEP_SECONDS)
    argv = [sys.executable, "-c", script, str(train), str(val), str(out)]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.Popen(
        [*argv, CFG.to_json(), tcfg.to_json()], env=env, stderr=subprocess.PIPE, text=True
    )


def _kill_after_a_checkpoint(child: subprocess.Popen, out: Path, delay: float) -> None:
    """SIGKILL ``delay`` seconds after the first periodic checkpoint is on disk."""
    try:
        deadline = time.monotonic() + 120
        while not (out / CHECKPOINT_FILE).exists():
            assert child.poll() is None, f"ended before a checkpoint: {child.stderr.read()}"
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("streaming", [False, True], ids=["in-memory", "streaming"])
def test_sigkill_at_a_random_step_then_rerun_is_bit_identical(tmp_path, streaming):
    train = _write_shards(tmp_path / "train", 2000, seed=0)
    val = _write_shards(tmp_path / "val", 300, seed=1)
    tcfg = _tcfg(streaming)
    reference = tmp_path / "reference"
    train_sae(ActivationStore(train), CFG, tcfg, reference, val=ActivationStore(val), device="cpu")

    out = tmp_path / "killed"
    delay = random.uniform(0.0, 1.0)
    _kill_after_a_checkpoint(_child(train, val, out, tcfg), out, delay)
    assert not (out / "sae_weights.safetensors").exists(), f"killed too late ({delay=:.2f} s)"
    step = _checkpoint_step(out / CHECKPOINT_FILE)
    assert 0 < step < 120 and step % CHECKPOINT_EVERY == 0

    rerun = _child(train, val, out, tcfg)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert f"from step {step}" in stderr  # it resumed rather than started over

    for name in OUTPUTS:
        ours, theirs = load_file(out / name), load_file(reference / name)
        assert ours.keys() == theirs.keys()
        for key, tensor in theirs.items():
            assert torch.equal(ours[key], tensor), f"{name}:{key} differs ({delay=:.2f} s)"
    assert pl.read_parquet(out / "log.parquet").equals(pl.read_parquet(reference / "log.parquet"))
    assert (out / "cfg.json").read_text() == (reference / "cfg.json").read_text()
    assert not (out / CHECKPOINT_FILE).exists()
