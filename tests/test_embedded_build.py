"""The embedded CLIP's build: a prefix of the schedule repeats a full build's first losses, and
every build is scored on held-out images."""

from __future__ import annotations

import json

import pytest
import torch
from open_clip.loss import ClipLoss

from clipsae.models.build_config import BuildConfig
from clipsae.models.embedded import (
    PREFIX_STEPS,
    batch_positives,
    build_embedded_clip,
    caption_ids,
    multi_positive_loss,
)
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


def _features(n: int, dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    image = torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1)
    text = torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1)
    return image, text


def test_multi_positive_loss_is_clip_loss_when_every_caption_differs():
    image, text = _features(6)
    scale = torch.tensor(10.0)
    ids = caption_ids([[f"a {i}", f"b {i}"] for i in range(6)])
    which = torch.tensor([0, 1, 1, 0, 1, 0])
    positives = batch_positives(ids, which)
    assert torch.equal(positives, torch.eye(6, dtype=torch.bool))
    expected = ClipLoss()(image, text, scale)
    assert multi_positive_loss(image, text, scale, positives) == pytest.approx(float(expected))


def test_multi_positive_loss_spreads_the_target_over_identical_captions():
    # Images 0 and 2 are both circles: "a circle." (template 1) fits both, their colours differ.
    captions = [["a red circle.", "a circle."], ["a red star.", "a star."]]
    captions.append(["a blue circle.", "a circle."])
    ids = caption_ids(captions)
    which = torch.tensor([1, 1, 0])  # texts: "a circle.", "a star.", "a blue circle."
    positives = batch_positives(ids, which)
    assert positives.tolist() == [[True, False, True], [False, True, False], [False, False, True]]
    image, text = _features(3)
    scale = torch.tensor(5.0)
    loss = multi_positive_loss(image, text, scale, positives)
    # By hand: text 0's target is half on image 0, half on image 2, and image 2's half on text 0,
    # half on text 2; every other row has its one positive.
    logits = scale * image @ text.T
    log_t = torch.log_softmax(logits.T, 1)
    log_i = torch.log_softmax(logits, 1)
    text_loss = -((log_t[0, 0] + log_t[0, 2]) / 2 + log_t[1, 1] + log_t[2, 2]) / 3
    image_loss = -(log_i[0, 0] + log_i[1, 1] + (log_i[2, 0] + log_i[2, 2]) / 2) / 3
    assert float(loss) == pytest.approx(float((text_loss + image_loss) / 2))
    # open_clip's loss, with image 2 a negative of text 0, is another number.
    assert float(ClipLoss()(image, text, scale)) != pytest.approx(float(loss))


def test_build_config_checks_the_loss():
    assert BuildConfig(loss="multi_positive").loss == "multi_positive"
    with pytest.raises(ValueError, match=r"build\.loss"):
        BuildConfig(loss="supcon")
