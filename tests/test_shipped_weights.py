"""The shipped embedded CLIP: the committed file is the one its record describes, its recorded
settings are the rebuild config's, a rebuild of the schedule's first steps repeats the recorded
losses, and the fp16 weights see what the record says they see."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors import safe_open

from clipsae.cli import main
from clipsae.config.validate import ConfigError, load_config, validate_config
from clipsae.models.build_config import BuildConfig
from clipsae.models.clip import load_clip
from clipsae.models.embedded import build_embedded_clip
from clipsae.models.weights import shipped_record, shipped_weights
from clipsae.runtime.checksum import file_sha256
from clipsae.steps.build import heldout_zeroshot

ROOT = Path(__file__).resolve().parents[1]
ARCH = "clipsae-tiny-vit"
REBUILD_CONFIG = ROOT / "config" / "experiments" / "embedded_clip.yaml"
PREFIX = 3  # steps rebuilt: the first losses depend on the seed, the images, the captions and lr
MAX_BYTES = 20 * 2**20


def _demo_with(**model) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["models"]["tiny"].update(model)
    return config


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(shipped_record(ARCH).read_text())


def test_the_file_is_the_recorded_fp16_one_and_small(record) -> None:
    path = shipped_weights(ARCH)
    assert file_sha256(path) == record["shipped"]["sha256"]
    assert path.stat().st_size <= MAX_BYTES
    with safe_open(str(path), framework="pt") as f:
        dtypes = {str(f.get_slice(key).get_dtype()) for key in f.keys()}  # noqa: SIM118
    assert dtypes == {"F16"}, dtypes


def test_the_recorded_settings_are_the_rebuild_configs(record) -> None:
    config = load_config(REBUILD_CONFIG, ROOT)
    model = config["models"]["tiny"]
    assert model["pretrained"] == "build" and model["arch"] == record["arch"] == ARCH
    assert BuildConfig(**record["config"]) == BuildConfig(**model["build"])


def test_the_demo_is_the_rebuild_config_but_for_the_weights() -> None:
    demo = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    rebuild = yaml.safe_load(REBUILD_CONFIG.read_text())
    built = rebuild["models"]["tiny"]
    assert demo["models"]["tiny"] == {
        **{k: v for k, v in built.items() if k != "build"},
        "pretrained": "shipped",
    }
    assert {k: v for k, v in demo.items() if k != "models"} == {
        k: v for k, v in rebuild.items() if k != "models"
    }


def test_a_rebuild_of_the_first_steps_repeats_the_recorded_losses(record, tmp_path) -> None:
    cfg = BuildConfig(**record["config"])
    _, prefix = build_embedded_clip(ARCH, tmp_path, cfg, device="cpu", stop_after=PREFIX)
    # Same maths on the same CPU kernels; only the summation order of threaded reductions may
    # differ between machines.
    assert prefix["first_losses"] == pytest.approx(record["first_losses"][:PREFIX], rel=1e-4)


def test_the_shipped_weights_see_what_the_record_says(record) -> None:
    clip = load_clip(ARCH, "shipped", device="cpu")
    scores = heldout_zeroshot(clip, BuildConfig(**record["config"]))
    recorded = record["shipped"]["heldout_zeroshot"]
    assert scores == pytest.approx(recorded, abs=1 / recorded["n"])
    # Measured 0.995 and 0.995 (issue #16 asks 0.90 for both).
    assert scores["color"] >= 0.95 and scores["shape"] >= 0.90


def test_shipped_is_refused_for_an_architecture_the_package_ships_none_for() -> None:
    with pytest.raises(FileNotFoundError, match="pretrained: shipped has no weights for ViT-B-32"):
        shipped_weights("ViT-B-32")
    config = _demo_with(arch="ViT-B-32")
    with pytest.raises(ConfigError, match=r"models\.tiny\.pretrained: pretrained: shipped has no"):
        validate_config(config, ROOT)


def test_a_build_block_on_a_model_that_is_not_built_is_refused() -> None:
    config = _demo_with(build={"steps": 9})
    with pytest.raises(ConfigError, match=r"models\.tiny\.build: only pretrained: build trains"):
        validate_config(config, ROOT)
    del config["models"]["tiny"]["build"]
    assert "build" not in validate_config(config, ROOT)["models"]["tiny"]


def test_ship_clip_writes_fp16_weights_and_a_record_of_a_build(tmp_path, capsys) -> None:
    built = tmp_path / "built"
    cfg = BuildConfig(n_images=64, steps=2, batch_size=32, colors=("red", "blue"))
    build_embedded_clip(ARCH, built, cfg, device="cpu")
    out = tmp_path / "shipped"
    out.mkdir()
    assert main(["ship-clip", "--built", str(built), "--out", str(out), "--rebuild", "X"]) == 0
    record = json.loads((out / f"{ARCH}.json").read_text())
    assert record["shipped"]["rebuild"] == "X"
    assert record["shipped"]["sha256"] == file_sha256(out / f"{ARCH}.safetensors")
    assert record["shipped"]["source_sha256"] == file_sha256(built / "open_clip_model.safetensors")
    assert set(record["shipped"]["heldout_zeroshot"]) == {"n", "color", "shape"}
    assert "held-out zero-shot" in capsys.readouterr().out


def test_the_demo_plans_no_build_and_extracts_from_the_shipped_file(tmp_path) -> None:
    """The shipped file is an input of the jobs that load the model: new weights rerun them."""
    (tmp_path / "config").symlink_to(ROOT / "config")  # the vocabulary path is relative
    plan = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-s", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path), f"--configfile={ROOT / 'config' / 'config.yaml'}",
         "--", "results/report.md"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    assert "rule build_embedded_clip" not in plan
    extract_inputs = [
        line for line in plan.splitlines() if line.strip().startswith("input: results/data/")
    ]
    assert extract_inputs and all(str(shipped_weights(ARCH)) in x for x in extract_inputs)
