"""Random weights (``pretrained: none``) come from the model entry's ``seed``: every process,
job and rerun sees the same model, and the caller's global RNG is left alone."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from clipsae.activations.shards import ActivationStore
from clipsae.cli import main
from clipsae.config.validate import ConfigError, validate_config
from clipsae.data import build_dataset
from clipsae.models.clip import open_model

ROOT = Path(__file__).resolve().parent.parent
TINY = {"arch": "clipsae-tiny-vit", "pretrained": "none", "layers": ["final"]}


def _weights(entry: dict) -> dict[str, torch.Tensor]:
    return open_model(entry, device="cpu").model.state_dict()


def test_one_entry_gives_the_same_weights_every_time_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = _weights(TINY)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.rand(1000)  # a job that drew random numbers before loading its model
    again = _weights({**TINY, "seed": 0})
    other = _weights({**TINY, "seed": 1})
    assert first.keys() == again.keys()
    # the image and the text tower alike: train, test and text jobs see one model
    for name in ("visual.conv1.weight", "token_embedding.weight", "text_projection"):
        assert torch.equal(first[name], again[name]), name
        assert not torch.allclose(first[name], other[name]), name
    assert all(torch.equal(first[k], again[k]) for k in first)


def _errors(config: dict) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(copy.deepcopy(config), ROOT)
    return str(err.value)


def test_a_seed_for_weights_it_cannot_change_is_a_config_error():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert validate_config(copy.deepcopy(config), ROOT)["models"]["tiny"]["seed"] == 0
    assert "models.rand.seed: -1 is less than the minimum of 0" in _errors(
        {**config, "models": {"rand": {**TINY, "seed": -1}}}
    )
    config["models"]["real"] = {"arch": "ViT-B-32", "pretrained": "openai", "layers": ["final"],
                                "seed": 3}  # fmt: skip
    config["models"]["tiny"]["seed"] = 2
    config["models"]["rand"] = {**TINY, "seed": 7}
    message = _errors(config)
    assert "models.real.seed: seed 3 has no effect with pretrained 'openai'" in message
    assert "models.tiny.seed: seed 2 has no effect with pretrained 'shipped'" in message
    assert "models.rand" not in message


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    dataset = build_dataset("s", {"source": "synthetic", "n_train": 12, "n_test": 0, "seed": 3})
    for record in dataset.records():
        dataset.open_image(record).save(root / f"{record.id}.png")
    return root


def _extract(images: Path, out: Path, *seed: str) -> list[str]:
    return ["extract", "--images", str(images), "--model", "clipsae-tiny-vit", "--pretrained",
            "none", *seed, "--layer", "block1", "--out", str(out), "--shard-rows", "8",
            "--device", "cpu"]  # fmt: skip


def test_extracting_twice_in_two_processes_writes_identical_shards(images, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        subprocess.run([sys.executable, "-m", "clipsae", *_extract(images, out)], env=env,
                       check=True, capture_output=True, timeout=120)  # fmt: skip
    shards = sorted(p.name for p in outs[0].glob("shard-*.npy"))
    assert shards == ["shard-00000.npy", "shard-00001.npy"]
    for name in shards:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    assert ActivationStore(outs[0]).meta.extra["seed"] == 0

    assert main(_extract(images, tmp_path / "c", "--seed", "1")) == 0
    a, c = ActivationStore(outs[0]).load_all(), ActivationStore(tmp_path / "c").load_all()
    assert a.shape == c.shape == (12, 128) and np.abs(a - c).max() > 0.1
