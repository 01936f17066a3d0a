"""Configuration mistakes fail before any job starts, naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from configs import tiny_built_model

from clipsae.config import matrix
from clipsae.config.validate import ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.fixture
def built() -> dict:
    """The demo with its model built in the run (the shipped weights' recipe)."""
    return yaml.safe_load((ROOT / "config" / "experiments" / "embedded_clip.yaml").read_text())


def check(config: dict, *patterns: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(config, ROOT)
    for pattern in patterns:
        assert pattern in str(err.value), str(err.value)


def test_the_demo_and_experiment_configs_are_valid():
    config = load_config(ROOT / "config" / "config.yaml", ROOT)
    assert config["extraction"]["dtype"] == "float32"  # a default filled in
    assert config["resources"] == {}
    for path in sorted((ROOT / "config" / "experiments").glob("*.yaml")):
        load_config(path, ROOT)


def test_unknown_keys_name_the_path_and_the_allowed_keys(demo):
    bad = copy.deepcopy(demo)
    bad["models"]["tiny"]["layer"] = ["final"]
    bad["extraction"]["dtyp"] = "float16"
    check(bad, "models.tiny: unknown key 'layer'", "allowed: arch, pretrained, layers",
          "extraction: unknown key 'dtyp'")  # fmt: skip


def test_wrong_types_and_values(demo):
    bad = copy.deepcopy(demo)
    bad["models"]["tiny"]["batch_size"] = "big"
    bad["extraction"]["dtype"] = "float8"
    bad["models"]["tiny"]["layers"] = ["final", "blk2"]
    check(bad, "models.tiny.batch_size: 'big' is not of type 'integer'",
          "extraction.dtype: 'float8' is not allowed (allowed: float16, float32)",
          "models.tiny.layers[1]: 'blk2' does not match")  # fmt: skip


def test_a_build_caption_template_with_an_unknown_field_is_named(built):
    bad = copy.deepcopy(built)
    bad["models"]["tiny"]["build"]["captions"] = ["a {shape}.", "a {colour} shape."]
    check(bad, "models.tiny.build", "'a {colour} shape.'", "caption")


def test_checks_that_need_the_code(demo, tmp_path):
    bad = copy.deepcopy(demo)
    bad["models"]["real"] = {"arch": "ViT-B-32", "pretrained": "opneai", "layers": ["block12"]}
    bad["models"]["nope"] = {"arch": "ViT-Q-99", "pretrained": "none", "layers": ["final"]}
    bad["saes"]["wide"] = {"arch": "topk", "k": 2000, "expansion": 8}
    bad["saes"]["typo"] = {"arch": "topk", "k": 8, "expansion": 8, "learning_rate": 1}
    bad["saes"]["zoo"] = {"arch": "nosuch", "k": 8, "expansion": 8}
    bad["saes"]["dense"] = {"arch": "relu", "k": 8, "expansion": 8}
    bad["datasets"]["folder"] = {"source": "imagefolder", "root": str(tmp_path / "missing")}
    bad["datasets"]["other"] = {"source": "flickr"}
    bad["vocabulary"] = "config/vocab/none.tsv"
    bad["models"]["built"] = {**tiny_built_model(), "build": {"colors": ["red", "mauve"]}}
    bad["models"]["tiny"]["build"] = {"steps": 10}
    check(
        bad,
        "models.built.build: colors ['mauve'] are not in the palette",
        "models.tiny.build: only pretrained: build trains a model, this one has pretrained: ship",
        "models.real.pretrained: pretrained tag 'opneai' is not known for ViT-B-32",
        "models.real.layers[0]: layer 'block12' is out of range",
        "models.nope.layers[0]: unknown open_clip architecture 'ViT-Q-99'",
        "saes.wide: k must be in 1..d_sae=1024, got 2000",
        "saes.typo: unknown key 'learning_rate' for arch 'topk' (allowed: ",
        "saes.zoo: unknown SAE arch 'nosuch'",
        "saes.dense: key 'k' does not apply to arch 'relu' but to batchtopk,",
        "datasets.folder:",
        "missing",
        "datasets.other:",
        "flickr",
        "vocabulary: file",
    )


def test_missing_sections_and_bad_yaml(tmp_path):
    check({"models": {}}, "'datasets' is a required property", "models: {} should be non-empty")
    path = tmp_path / "c.yaml"
    path.write_text("models: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path, ROOT)


def test_vlm_settings_are_checked_before_any_request(demo):
    bad = copy.deepcopy(demo)
    bad["interpret"] = {"vlm": {"modle": "x", "concurrency": 0}}
    check(bad, "interpret.vlm: unknown key 'modle'")
    bad["interpret"] = {"vlm": {"concurrency": 0}}
    check(bad, "interpret.vlm: concurrency: must be an integer in 1..64, got 0")
    bad["interpret"] = {"cahce": "x"}
    check(bad, "interpret: unknown key 'cahce'")


def test_interpret_keys_are_checked(demo):
    config = validate_config(copy.deepcopy(demo), ROOT)
    assert config["interpret"]["manual"] is None
    assert config["interpret"]["scoring"] == {
        "n_quantiles": 10,
        "per_quantile": 10,
        "n_negative": 100,
        "min_positive": 2,
        "seed": 0,
    }
    bad = copy.deepcopy(demo)
    bad["interpret"] = {"scoring": {"per_quantile": 0, "n_negativ": 5}}
    check(bad, "interpret.scoring: unknown key 'n_negativ' (allowed: n_quantiles, per_quantile,",
          "interpret.scoring.per_quantile: 0 is less than the minimum of 1")  # fmt: skip
    bad["interpret"] = {"manual": "config/names_by_hand.csv"}
    check(bad, "interpret.manual: file", "names_by_hand.csv does not exist")


def only_topk(demo: dict) -> dict:
    """The demo with its first SAE alone (no entry narrowed by the matrix, none aligned)."""
    config = copy.deepcopy(demo)
    config["saes"] = {"topk8-x8": config["saes"]["topk8-x8"]}
    return config


def test_the_matrix_defaults_to_every_model_layer_and_dataset_evaluated_on_its_own(demo):
    config = validate_config(only_topk(demo), ROOT)
    runs = list(matrix.runs(config))
    assert len(runs) == 2 * 2  # layers x datasets
    assert [(r["layer"], r["dataset"]) for r in runs[:2]] == [
        ("final", "shapes"),
        ("final", "colors"),
    ]
    assert [e["evalset"] for e in matrix.evaluations(config)] == [r["dataset"] for r in runs]


def test_the_demo_report_extras_run_on_final_shapes_only(demo):
    config = validate_config(copy.deepcopy(demo), ROOT)
    runs = list(matrix.runs(config))
    extras = [r for r in runs if r["sae"] not in ("topk8-x8", "batchtopk4-d64")]
    assert {(r["layer"], r["dataset"]) for r in extras} == {("final", "shapes")}
    assert len(extras) == len(config["saes"]) - 2
    # the ground-truth SAE: final only, on both datasets
    small = [(r["layer"], r["dataset"]) for r in runs if r["sae"] == "batchtopk4-d64"]
    assert sorted(small) == [("final", "colors"), ("final", "shapes")]
    assert list(matrix.alignments(config)) == [
        {"model": "tiny", "layer": "final", "dataset": "shapes", "sae": "topk8-x8-seed1",
         "partner": "topk8-x8"}
    ]  # fmt: skip
    assert "align_with" not in matrix.sae_hyperparameters(config["saes"]["topk8-x8-seed1"])


def test_align_with_names_a_partner_trained_alike_with_another_seed(demo):
    config = copy.deepcopy(demo)
    seed1 = config["saes"]["topk8-x8-seed1"]
    check(copy.deepcopy(config) | {"saes": {**config["saes"], "x": {**seed1, "align_with": 3}}},
          "saes.x.align_with: 3 is not of type 'string'")  # fmt: skip
    for partner, message in (
        (
            "topk8-x8-seed1",
            "saes.topk8-x8-seed1.align_with: an entry cannot be aligned with itself",
        ),
        ("nope", "saes.topk8-x8-seed1.align_with: 'nope' is not defined (defined: batchtopk4-d64,"),
    ):
        seed1["align_with"] = partner
        check(config, message)
    seed1 |= {"align_with": "topk8-x8", "k": 16, "lr": 0.01}
    check(config, "saes.topk8-x8-seed1.align_with: 'topk8-x8' is not trained alike: k, lr differ")
    seed1 |= {"k": 8, "lr": 0.001, "seed": 0, "train": {"dataset": "shapes", "max_images": 9}}
    check(config, "'topk8-x8' has the same seed (0)",
          "'topk8-x8' is trained on other rows (train differs)")  # fmt: skip
    seed1 |= {"seed": 1, "train": {"dataset": "shapes"}, "layers": ["block1"]}
    check(config, "'topk8-x8' has no run on a (model, layer, dataset) of this one")


def test_evaluation_settings_are_checked(demo):
    bad = copy.deepcopy(demo)
    bad["evaluation"] = {"splice": {"l1": 0, "concepts": 5}, "monosemanticity": {"max_images": 1}}
    check(bad, "evaluation.splice: unknown key 'concepts' (allowed: l1, max_images, seed)",
          "evaluation.splice.l1: 0 is less than or equal to the minimum of 0",
          "evaluation.monosemanticity.max_images: 1 is less than the minimum of 2")  # fmt: skip


def test_an_entry_picks_its_layers_training_data_and_evaluations(demo):
    config = only_topk(demo)
    config["saes"]["topk8-x8"] |= {
        "layers": ["block1"],
        "train": {"dataset": "shapes", "max_images": 100},
        "eval": ["shapes", "colors"],
        "published": {"source": "a paper", "on": {"colors": {"accuracy_sae": 0.5}}},
    }
    config = validate_config(config, ROOT)
    evaluations = [e for e in matrix.evaluations(config) if e["sae"] == "topk8-x8"]
    assert [tuple(e.values()) for e in evaluations] == [
        ("tiny", "block1", "shapes", "topk8-x8", "shapes"),
        ("tiny", "block1", "shapes", "topk8-x8", "colors"),
    ]
    entry = config["saes"]["topk8-x8"]
    assert "eval" not in matrix.sae_hyperparameters(entry)
    data = matrix.training_data(entry)
    assert (data.split, data.val_split, data.max_images) == ("train", "test", 100)


def test_matrix_names_and_keys_are_checked(demo):
    bad = copy.deepcopy(demo)
    bad["saes"]["topk8-x8"] |= {
        "models": ["huge"],
        "train": {"dataset": ["shapes", "food"], "max_imgs": 5},
        "eval": ["cifar"],
        "published": {"on": {"colors": {"top1": 0.9}}},
    }
    check(bad, "saes.topk8-x8.train: unknown key 'max_imgs'",
          "saes.topk8-x8.published.on.colors: unknown key 'top1'")  # fmt: skip
    del bad["saes"]["topk8-x8"]["train"]["max_imgs"]
    bad["saes"]["topk8-x8"]["published"]["on"]["colors"] = {"L0": 3}
    check(
        bad,
        "saes.topk8-x8.models: 'huge' is not defined (defined: tiny)",
        "saes.topk8-x8.train.dataset: 'food' is not defined",
        "saes.topk8-x8.eval: 'cifar' is not defined",
        "saes.topk8-x8.published.on.colors: 'colors' is not among the datasets it is evaluated on",
    )
    bad = copy.deepcopy(demo)
    bad["saes"]["topk8-x8"]["layers"] = ["block9"]
    check(bad, "saes.topk8-x8.layers: layer 'block9' is out of range")
