"""Workflow configuration: schema validation with defaults, then checks that need the code.

Every mistake is reported before any job starts, as ``ConfigError`` naming the key path
(``models.tiny.layers[1]``) and, where there is a closed set, the allowed values.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from clipsae.config.matrix import check_alignment, check_matrix, runs, sae_hyperparameters
from clipsae.config.prompts import load_prompts
from clipsae.config.yamlfile import read_yaml
from clipsae.data.base import dataset_source_spec
from clipsae.runtime.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.yaml"


def _key_path(path: Iterator) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    schema = error.schema
    if error.validator == "additionalProperties" and isinstance(schema.get("properties"), dict):
        extra = sorted(set(error.instance) - set(schema["properties"]))
        allowed = ", ".join(schema["properties"])
        return f"{where}: unknown key {', '.join(map(repr, extra))} (allowed: {allowed})"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{where}: {error.instance!r} is not allowed (allowed: {allowed})"
    if error.validator == "propertyNames":
        return f"{where}: {error.message}"
    return f"{where}: {error.message}"


def _with_defaults(validator_class: type) -> type:
    """A validator that also fills in ``default`` values (the jsonschema-documented pattern)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def load_schema() -> dict:
    return read_yaml(SCHEMA_PATH)


def schema_defaults(*keys: str) -> dict[str, Any]:
    """The defaults the schema gives the object at ``keys`` (``"features"``, or ``"interpret",
    "scoring"``): for a command line that offers the workflow's settings with the same defaults."""
    node = load_schema()
    for key in keys:
        node = node["properties"][key]
    return {name: sub["default"] for name, sub in node["properties"].items() if "default" in sub}


def validate_schema(config: dict) -> dict:
    """Validate against ``clipsae/config/schema.yaml``; returns a copy with defaults filled in."""
    config = copy.deepcopy(config)
    schema = load_schema()
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(map(_describe, errors)))
    return config


def dataset_entry_from_file(path: Path, name: str) -> dict:
    """The source spec of one dataset of a config file, read without validating the rest.

    Only this entry matters to a command that opens a dataset's images by hand, and an unrelated
    mistake elsewhere in the file (a model tag) should not stop it.
    """
    config = read_yaml(path)
    datasets = config.get("datasets", {}) if isinstance(config, dict) else {}
    if name not in datasets:
        raise ValueError(
            f"{path}: no dataset {name!r} under 'datasets' (available: {sorted(datasets)})"
        )
    return dataset_source_spec(datasets[name])


def check_semantics(config: dict, base_dir: Path) -> None:
    """Checks that need the code: known architectures, tags, layer ranges, k vs d_sae, paths."""
    from clipsae.data import build_dataset
    from clipsae.interpret.vlm.config import VLMConfig
    from clipsae.models.architectures import check_pretrained, check_seed, layer_width
    from clipsae.models.build_config import BuildConfig
    from clipsae.sae.config import TrainConfig
    from clipsae.sae.entry import check_sae_spec

    problems: list[str] = []
    widths: dict[tuple[str, str], int | None] = {}

    def attempt(where: str, fn, *args) -> object:
        try:
            return fn(*args)
        except (ValueError, FileNotFoundError, KeyError, TypeError) as exc:
            problems.append(f"{where}: {exc}")
            return None

    for name, model in config["models"].items():
        where = f"models.{name}"
        if model["pretrained"] == "build":
            attempt(f"{where}.build", lambda build: BuildConfig(**build), model["build"])
        elif "build" in model:
            problems.append(
                f"{where}.build: only pretrained: build trains a model, this one has pretrained: "
                f"{model['pretrained']} (remove build, or set pretrained: build)"
            )
        else:
            attempt(f"{where}.pretrained", check_pretrained, model["arch"], model["pretrained"])
        attempt(f"{where}.seed", check_seed, model["pretrained"], model["seed"])
        for i, layer in enumerate(model["layers"]):
            widths[name, layer] = attempt(f"{where}.layers[{i}]", layer_width, model["arch"], layer)
    unknown_names = check_matrix(config)
    problems.extend(unknown_names)
    if not unknown_names:
        problems.extend(check_alignment(config, default_seed=TrainConfig.seed))
    checked: set[tuple[str, str, str]] = set()
    for run in [] if unknown_names else runs(config):
        model, layer, sae = run["model"], run["layer"], run["sae"]
        if (model, layer) not in widths:  # a layer only this SAE's `layers` names
            arch = config["models"][model]["arch"]
            widths[model, layer] = attempt(f"saes.{sae}.layers", layer_width, arch, layer)
        if widths[model, layer] is not None and (model, layer, sae) not in checked:
            checked.add((model, layer, sae))
            entry = sae_hyperparameters(config["saes"][sae])
            attempt(f"saes.{sae}", check_sae_spec, entry, widths[model, layer])
    for name, entry in config["datasets"].items():
        attempt(f"datasets.{name}", build_dataset, name, dataset_source_spec(entry))
        if "templates" in entry:
            attempt(f"datasets.{name}.templates", load_prompts, entry["templates"], base_dir)
    try:
        VLMConfig.from_mapping(config["interpret"]["vlm"])
    except ConfigError as exc:
        problems.append(str(exc))
    vocab = base_dir / config["vocabulary"]
    if not vocab.is_file():
        problems.append(f"vocabulary: file {vocab} does not exist")
    manual = config["interpret"]["manual"]
    if manual is not None and not (base_dir / manual).is_file():
        problems.append(f"interpret.manual: file {base_dir / manual} does not exist")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def validate_config(config: dict, base_dir: Path = Path(".")) -> dict:
    filled = validate_schema(config)
    for name, model in filled["models"].items():
        # The schema fills every model's build with defaults; only a built model has one, so
        # that a build block given to any other is reported rather than ignored.
        if model["pretrained"] != "build" and "build" not in config["models"][name]:
            del model["build"]
    check_semantics(filled, Path(base_dir))
    return filled


def load_config(path: Path, base_dir: Path = Path(".")) -> dict:
    """Load and validate a config file; relative paths in it are relative to ``base_dir``."""
    path = Path(path)
    try:
        raw = read_yaml(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate_config(raw, base_dir)
