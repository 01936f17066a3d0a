"""The demo's ground truth, through the real workflow: the shipped CLIP's `colors` dataset at full
size, and the demo's small SAE (`batchtopk4-d64`) on the final embedding, as `config/config.yaml`
has them. Its latents must recover colours and shapes, be named right, and steer zero-shot to
their colour. Issue #16 asks 80% of the colour and shape values at F1 >= 0.8 and 70% of those
named right at top-1; over seeds 0-2 and both datasets the recipe recovered 83-94%
(bench/README.md, "With the CLIP of 6000 steps").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RUN = "results/eval/tiny/final/colors/batchtopk4-d64"

pytestmark = pytest.mark.slow

# Measured through this workflow (seed 0): 22 of 24 colours and 6 of 6 shapes (0.93), every
# recovered value named right. Floors: the 80% (the seed spread of the recipe reaches
# down to 0.83), and 90% named right.
FLOOR_RECOVERED = 0.80
FLOOR_NAMED = 0.90


def demo_truth_config() -> dict:
    """The demo reduced to what this test reads: one dataset, one layer, one SAE, unchanged."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["models"]["tiny"]["layers"] = ["final"]
    config["datasets"] = {"colors": config["datasets"]["colors"]}
    config["saes"] = {"batchtopk4-d64": config["saes"]["batchtopk4-d64"]}
    return config


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("demo_truth")
    for item in ("Snakefile", "rules", "workflow_scripts", "envs", "config"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(demo_truth_config()))
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", f"{RUN}/ground_truth.json",
         f"{RUN}/steering.json"],
        cwd=work, capture_output=True, text=True, timeout=1800,
        env={"TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT),
             "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return work / RUN


def colour_and_shape_recovered(method: dict) -> float:
    """The fraction of the 24 colours and 6 shapes that some latent detects at F1 >= 0.8: the
    factors issue #16 names (the shipped CLIP barely encodes the background)."""
    by_factor = method["recovered_by_factor"]
    return (24 * by_factor["color"] + 6 * by_factor["shape"]) / 30


def test_the_small_sae_recovers_colours_and_shapes_and_names_them_right(run) -> None:
    methods = json.loads((run / "ground_truth.json").read_text())["methods"]
    assert colour_and_shape_recovered(methods["sae"]) >= FLOOR_RECOVERED
    assert methods["sae"]["naming_top1_recovered"] >= FLOOR_NAMED
    for baseline in ("clip", "random"):
        assert colour_and_shape_recovered(methods[baseline]) < 0.5


def test_amplifying_a_colour_latent_turns_most_predictions_to_its_colour(run) -> None:
    """Measured: at twice the 99th percentile (x2) 23 of the 24 colour latents turn more than
    half of the other colours' images to theirs (at x1, 21: 62% of the images on average);
    ablation removes the colour from more than half of its images for 23."""
    table = pl.read_parquet(run / "steering.parquet")
    by_setting = {s: table.filter(pl.col("setting") == s) for s in ("x1", "x2", "ablate")}
    assert by_setting["x1"].height == 24  # one detector latent per colour
    assert (by_setting["x2"]["flip_to_target"] > 0.5).sum() >= 21
    assert (by_setting["ablate"]["target_removed"] > 0.5).sum() >= 18
    summary = json.loads((run / "steering.json").read_text())["settings"]
    assert summary["x1"]["flip_to_target"] > 0.4 > 0.01 > summary["ablate"]["flip_to_target"]
