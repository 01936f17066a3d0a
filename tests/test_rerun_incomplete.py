"""Snakemake killed mid-``train_sae`` (SIGKILL to its whole process group, as a node loss or a
walltime kill does): what the user sees next, and that ``--rerun-incomplete`` ends with the
weights of an uninterrupted run, resumed from the job's checkpoint rather than started over.

A reduced workflow: one random-weight model (no build step), one small dataset, one layer,
and only the targets that one SAE needs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
SAE_DIR = "results/sae/tiny/final/shapes/topk8-x8"
TARGET = f"{SAE_DIR}/metrics.json"
TRAIN_LOG = "logs/train_sae/tiny/final/shapes/topk8-x8.log"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
ENV = {"TQDM_DISABLE": "1", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}

pytestmark = pytest.mark.slow


def tiny_config() -> dict:
    """150 training steps of ~35 ms on 2 cores: seconds to kill in after the first checkpoint."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    model = config["models"]["tiny"]
    model.update(pretrained="none", layers=["final"])
    config["datasets"] = {"shapes": {**config["datasets"]["shapes"], "n_train": 200, "n_test": 40}}
    config["saes"] = {"topk8-x8": config["saes"]["topk8-x8"]}
    config["saes"]["topk8-x8"].update(batch_size=20, epochs=15, checkpoint_every=50)
    config["resources"] = {"extract_image": {"threads": 1}}  # train and test side by side
    return config


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args, TARGET],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
    )


def kill_during_training(workdir: Path) -> None:
    """Start the workflow; SIGKILL Snakemake and its job once training has checkpointed."""
    run = subprocess.Popen(
        [*SNAKEMAKE, TARGET],
        cwd=workdir,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the job dies with it
    )
    try:
        deadline = time.monotonic() + 300
        # log.parquet, an output, follows each checkpoint: Snakemake flags only outputs that
        # exist as incomplete (without one, the rerun just runs the job again, and it resumes).
        while not (workdir / SAE_DIR / "log.parquet").exists():
            assert run.poll() is None, "the workflow ended before training checkpointed"
            assert time.monotonic() < deadline, "no training checkpoint after 300 s"
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGKILL)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert run.returncode == -signal.SIGKILL


def weights(workdir: Path) -> dict[str, torch.Tensor]:
    return load_file(workdir / SAE_DIR / "sae_weights.safetensors")


def test_killed_training_needs_rerun_incomplete_and_then_matches_a_clean_run(tmp_path):
    for item in ("Snakefile", "rules", "workflow_scripts", "envs", "config"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    clean = snakemake(tmp_path)
    assert clean.returncode == 0, clean.stderr[-4000:]
    reference = weights(tmp_path)
    shutil.rmtree(tmp_path / SAE_DIR)

    kill_during_training(tmp_path)
    assert not (tmp_path / SAE_DIR / "sae_weights.safetensors").exists()

    plain = snakemake(tmp_path)
    assert plain.returncode != 0
    assert "IncompleteFilesException" in plain.stderr
    assert "rerun your command with the --rerun-incomplete flag" in plain.stderr
    assert f"{SAE_DIR}/log.parquet" in plain.stderr  # the one output the job had written

    # SIGKILL also left Snakemake's lock behind; Snakemake says how to remove it.
    locked = snakemake(tmp_path, "--rerun-incomplete")
    assert locked.returncode != 0
    assert "LockException" in locked.stderr and "--unlock" in locked.stderr
    assert snakemake(tmp_path, "--unlock").returncode == 0

    rerun = snakemake(tmp_path, "--rerun-incomplete")
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    log = (tmp_path / TRAIN_LOG).read_text()
    resumed = re.search(r"resuming \S+/checkpoint.safetensors from step (\d+)", log)
    assert resumed, log[-2000:]
    assert 0 < int(resumed.group(1)) < 150
    ours = weights(tmp_path)
    assert ours.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(ours[name], tensor), name
    assert not (tmp_path / SAE_DIR / "checkpoint.safetensors").exists()
    after = snakemake(tmp_path, "-n")
    assert "Nothing to be done" in after.stdout + after.stderr
