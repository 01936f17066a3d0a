"""Published zero-shot prompt ensembles: shipped files, references, and their checks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from clipsae.config.prompts import PROMPTS_DIR, Prompts, load_prompts
from clipsae.config.validate import ConfigError, validate_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("name", "n_classes", "n_templates", "first"),
    [("cifar10", 10, 18, "airplane"), ("cifar100", 100, 18, "apple"),
     ("food101", 101, 1, "apple pie"), ("imagenet", 1000, 80, "tench")],
)  # fmt: skip
def test_the_shipped_ensembles_have_openais_counts_and_name_their_source(
    name, n_classes, n_templates, first
):
    prompts = load_prompts(name, ROOT)
    assert (len(prompts.classes), len(prompts.templates)) == (n_classes, n_templates)
    assert prompts.classes[0] == first
    repeated = {c for c in prompts.classes if prompts.classes.count(c) > 1}
    # OpenAI's ImageNet list names two pairs of classes alike; kept as published.
    assert repeated == ({"missile", "sunglasses"} if name == "imagenet" else set())
    raw = yaml.safe_load((ROOT / PROMPTS_DIR / f"{name}.yaml").read_text())
    assert "github.com/openai/CLIP" in raw["source"]


def test_a_list_a_name_and_a_path_resolve(tmp_path):
    assert load_prompts(["a {}."], ROOT) == Prompts(templates=("a {}.",))
    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump({"templates": ["a {} thing."], "classes": ["x", "y"]}))
    got = load_prompts(str(own), ROOT)
    assert got.to_params() == {"templates": ["a {} thing."], "classes": ["x", "y"]}
    with pytest.raises(FileNotFoundError, match=r"no prompts file .*cifar11\.yaml .*cifar10, "):
        load_prompts("cifar11", ROOT)
    own.write_text(yaml.safe_dump({"templates": ["no slot"]}))
    with pytest.raises(ValueError, match="each with '\\{\\}'"):
        load_prompts(str(own), ROOT)
    own.write_text(yaml.safe_dump({"template": ["a {}."]}))
    with pytest.raises(ValueError, match="expected keys templates, classes, source"):
        load_prompts(str(own), ROOT)


def test_a_config_names_a_missing_ensemble_by_its_key():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["datasets"]["shapes"]["templates"] = "cifar10"
    validate_config(copy.deepcopy(config), ROOT)  # a shipped ensemble, by name
    config["datasets"]["shapes"]["templates"] = "shapes-prompts"
    with pytest.raises(ConfigError, match=r"datasets\.shapes\.templates: no prompts file"):
        validate_config(config, ROOT)
