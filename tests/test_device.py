"""Device choice: ``auto`` falls back to the CPU and says so; an explicit ``cuda`` without CUDA
is an error naming the setting; the device a step picks reaches both its model and its inputs.

No test needs a GPU. On a CPU machine every device is the CPU, so the plumbing tests check that
the device given reaches the inputs; the GPU case itself is exercised only where one is present.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch

from clipsae.cli import main
from clipsae.data import build_dataset
from clipsae.evaluate.zeroshot import zeroshot_on_embeddings, zeroshot_spliced
from clipsae.interpret.features import latent_stats_and_top
from clipsae.models.clip import open_model
from clipsae.models.text import encode_texts
from clipsae.runtime.device import pick_device
from clipsae.sae import build_sae
from clipsae.sae.config import TopKConfig

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
CPU = torch.device("cpu")
TINY = {"arch": "clipsae-tiny-vit", "pretrained": "none", "layers": ["final"]}


class DeviceLog:
    """Wraps a function of one tensor and records the device of every tensor it was given."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.fn, self.devices = fn, set()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.devices.add(x.device)
        return self.fn(x)


@no_cuda
def test_auto_without_cuda_is_the_cpu_and_is_logged(monkeypatch, caplog):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, "clipsae.runtime.device"):
        warnings.simplefilter("error")
        assert pick_device("auto") == CPU
        assert pick_device(None) == CPU
    assert "no CUDA device available to torch, running on CPU" in caplog.text


@no_cuda
def test_an_allotted_gpu_torch_cannot_use_warns_under_auto(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.warns(UserWarning, match="CUDA_VISIBLE_DEVICES=0"):
        assert pick_device("auto") == CPU


@no_cuda
@pytest.mark.parametrize("requested", ["cuda", "cuda:1", torch.device("cuda")])
def test_explicit_cuda_without_cuda_is_an_error_naming_the_setting(requested):
    with pytest.raises(ValueError, match=r"config key `device`, flag --device\) is 'cuda") as err:
        pick_device(requested)
    assert "sees no CUDA device" in str(err.value) and "use auto" in str(err.value)


def test_a_name_that_is_no_device_is_an_error():
    with pytest.raises(ValueError, match="'gpu' is not a torch device"):
        pick_device("gpu")
    assert pick_device("cpu") == pick_device(CPU) == CPU


@no_cuda
def test_the_command_line_reports_cuda_without_cuda_in_one_line(tmp_path, capsys):
    classes = tmp_path / "classes.json"
    classes.write_text('{"classes": ["circle"]}')
    argv = ["embed-text", "--model", "clipsae-tiny-vit", "--classes", str(classes),
            "--out", str(tmp_path / "c.npy"), "--device", "cuda"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("clipsae embed-text: error: device (config key `device`") and "\n" not in err
    )
    assert not (tmp_path / "c.npy").exists()


def test_features_encode_inputs_on_the_given_device():
    dev = pick_device("cpu")
    sae = build_sae(TopKConfig(d_in=8, d_sae=16, k=2)).to(dev).eval()
    encode = DeviceLog(sae.encode)
    batches = np.random.default_rng(0).normal(size=(3, 5, 8)).astype(np.float32)
    stats = latent_stats_and_top(encode, batches, 16, 2, device=dev).stats
    assert encode.devices == {dev} == {p.device for p in sae.parameters()}
    assert stats["fire_count"].sum() == 15 * 2


def test_zero_shot_feeds_the_sae_on_the_given_device():
    dev = pick_device("cpu")
    sae = build_sae(TopKConfig(d_in=8, d_sae=16, k=2)).to(dev).eval()
    reconstruct = DeviceLog(sae)
    rng = np.random.default_rng(1)
    classes = rng.normal(size=(3, 8)).astype(np.float32)
    batches = [(rng.normal(size=(4, 8)).astype(np.float32), np.array([0, 1, 2, 0]))]
    assert zeroshot_on_embeddings(batches, classes, reconstruct, dev)["n"] == 4
    assert reconstruct.devices == {dev}

    clip = open_model(TINY, device="cpu")
    assert clip.device == CPU and {p.device for p in clip.model.parameters()} == {CPU}
    dataset = build_dataset("s", {"source": "synthetic", "n_train": 0, "n_test": 3, "seed": 4})
    splice = DeviceLog(lambda cls: cls)
    classes = rng.normal(size=(len(dataset.class_names), 128)).astype(np.float32)
    result = zeroshot_spliced(clip, dataset, dataset.records(), "block1", classes, splice)
    assert result["n"] == 3 and splice.devices == {clip.device}


class TextTower:
    """The part of a CLIP model ``encode_texts`` uses, recording where its tokens arrive."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.encode_text = DeviceLog(model.encode_text)


def test_text_tokens_go_to_the_model_device():
    clip = open_model(TINY, device="cpu")
    tower = TextTower(clip.model)
    emb = encode_texts(dataclasses.replace(clip, model=tower), ["a red circle.", "a square."])
    assert emb.shape == (2, 128) and tower.encode_text.devices == {clip.device} == {CPU}
