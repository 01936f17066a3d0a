"""``clipsae prepare`` from an inline spec and from a workflow config."""

from __future__ import annotations

import json

import pytest
import yaml

from clipsae.cli import main
from clipsae.data import build_dataset, read_index

SPEC = {"source": "synthetic", "n_train": 12, "n_test": 4, "image_size": 16, "seed": 5}


def test_prepare_from_spec_json(tmp_path):
    out = tmp_path / "data" / "demo"
    assert (
        main(["prepare", "--dataset", "demo", "--spec-json", json.dumps(SPEC), "--out", str(out)])
        == 0
    )
    records, classes = read_index(out)
    expected = build_dataset("demo", SPEC)
    assert records == expected.records()
    assert classes == expected.class_names


def test_prepare_from_config_ignores_workflow_keys(tmp_path):
    config = tmp_path / "config.yaml"
    entry = {**SPEC, "templates": ["a photo of a {}."]}
    config.write_text(yaml.safe_dump({"datasets": {"shapes": entry, "other": {"source": "x"}}}))
    out = tmp_path / "out"
    assert main(["prepare", "--dataset", "shapes", "--config", str(config), "--out", str(out)]) == 0
    assert read_index(out)[0] == build_dataset("shapes", SPEC).records()


def test_prepare_names_a_missing_dataset(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"shapes": SPEC}}))
    argv = ["prepare", "--dataset", "nope", "--config", str(config), "--out", str(tmp_path)]
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        f"clipsae prepare: error: {config}: no dataset 'nope' under 'datasets' "
        "(available: ['shapes'])\n"
    )


def test_prepare_rejects_bad_json(tmp_path, capsys):
    argv = ["prepare", "--dataset", "d", "--spec-json", "{source:", "--out", str(tmp_path)]
    assert main(argv) == 1
    assert capsys.readouterr().err.startswith(
        "clipsae prepare: error: --spec-json is not valid JSON: Expecting property name"
    )


def test_prepare_needs_exactly_one_spec(tmp_path):
    with pytest.raises(SystemExit):
        main(["prepare", "--dataset", "d", "--out", str(tmp_path)])
