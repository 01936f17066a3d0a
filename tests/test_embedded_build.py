"""The embedded CLIP's build: a prefix of the schedule repeats a full build's first losses, and
every build is scored on held-out images."""

from __future__ import annotations

import json

import pytest
import torch

from clipsae.models.build_config import BuildConfig
from clipsae.models.embedded import PREFIX_STEPS, build_embedded_clip
from clipsae.steps.build import HELDOUT_IMAGES, build_model

ARCH = "clipsae-tiny-vit"
# A schedule small enough for a test: 8 steps over 48 images, two colours.
BUILD = {"n_images": 48, "steps": 8, "batch_size": 16, "lr": 1e-3, "seed": 0}
BUILD["colors"] = ["red", "blue"]


@pytest.fixture(scope="module")
def full_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    report = build_model(arch=ARCH, build=BUILD, out_dir=out, device="cpu")
    return out, report


def test_build_json_records_the_first_losses_and_held_out_zeroshot(full_build):
    out, report = full_build
    assert json.loads((out / "build.json").read_text()) == json.loads(json.dumps(report))
    assert report["steps_run"] == 8 and len(report["first_losses"]) == min(8, PREFIX_STEPS)
    heldout = report["heldout_zeroshot"]
    assert heldout["n"] == HELDOUT_IMAGES
    # Two colours and six shapes: accuracies are fractions of the 400 images.
    for factor in ("color", "shape"):
        assert 0.0 <= heldout[factor] <= 1.0
        assert heldout[factor] * HELDOUT_IMAGES == pytest.approx(
            round(heldout[factor] * HELDOUT_IMAGES)
        )


def test_a_prefix_of_the_schedule_repeats_the_full_builds_first_losses(full_build, tmp_path):
    _, report = full_build
    torch.manual_seed(123)  # the build's randomness must come from its seed alone
    _, prefix = build_embedded_clip(
        ARCH, tmp_path, BuildConfig(**BUILD), device="cpu", stop_after=3
    )
    assert prefix["steps_run"] == 3
    assert prefix["first_losses"] == pytest.approx(report["first_losses"][:3], rel=1e-5)
    # A different seed starts elsewhere: the check has teeth.
    _, other = build_embedded_clip(
        ARCH, tmp_path, BuildConfig(**{**BUILD, "seed": 1}), device="cpu", stop_after=1
    )
    assert other["first_losses"][0] != pytest.approx(report["first_losses"][0], rel=1e-5)
