"""Config validation, wildcard constraints and the helpers the rules share."""

import os
import re
from pathlib import Path

from clipsae.config.validate import validate_config
from clipsae.models.weights import built_weights

config = validate_config(config, Path(workflow.basedir))

R = "results"
SPLITS = ["train", "test"]

# Defaults for every rule; config `resources.<rule>` overrides any of them.
DEFAULT_RESOURCES = {
    "prepare_dataset": dict(threads=1, mem_mb=2000, runtime=30, gpu=0),
    "build_embedded_clip": dict(threads=2, mem_mb=4000, runtime=60, gpu=1),
    "extract_image": dict(threads=2, mem_mb=8000, runtime=240, gpu=1),
    "embed_text": dict(threads=2, mem_mb=4000, runtime=30, gpu=1),
    "train_sae": dict(threads=2, mem_mb=16000, runtime=480, gpu=1),
    "eval_reconstruction": dict(threads=2, mem_mb=8000, runtime=60, gpu=0),
    "eval_zeroshot": dict(threads=2, mem_mb=8000, runtime=120, gpu=1),
    "encode_features": dict(threads=2, mem_mb=8000, runtime=120, gpu=1),
    "collages": dict(threads=1, mem_mb=2000, runtime=30, gpu=0),
    "name_by_vocab": dict(threads=1, mem_mb=4000, runtime=30, gpu=0),
    "ground_truth": dict(threads=2, mem_mb=4000, runtime=30, gpu=0),
    "steering": dict(threads=2, mem_mb=4000, runtime=30, gpu=0),
    "interpret_vlm": dict(threads=1, mem_mb=2000, runtime=120, gpu=0),
    "clean_interpretations": dict(threads=1, mem_mb=4000, runtime=30, gpu=0),
    "results_table": dict(threads=1, mem_mb=1000, runtime=10, gpu=0),
    "report": dict(threads=1, mem_mb=2000, runtime=10, gpu=0),
}


def res(rule_name, key):
    return (
        config["resources"]
        .get(rule_name, {})
        .get(key, DEFAULT_RESOURCES[rule_name][key])
    )


names = lambda section: "|".join(map(re.escape, config[section]))


wildcard_constraints:
    model=names("models"),
    dataset=names("datasets"),
    sae=names("saes"),
    split="|".join(SPLITS),
    layer=r"final|block\d+",


def model_entry(w):
    return config["models"][w.model]


def dataset_entry(w):
    return config["datasets"][w.dataset]


def model_weights(w):
    """The built checkpoint for `pretrained: build` models; nothing for tags and paths."""
    if config["models"][w.model]["pretrained"] == "build":
        return str(built_weights(f"{R}/models", w.model))
    return []


def combos():
    """Every (model, layer, dataset, sae) the config asks for."""
    for model, entry in config["models"].items():
        for layer in entry["layers"]:
            for dataset in config["datasets"]:
                for sae in config["saes"]:
                    yield dict(model=model, layer=layer, dataset=dataset, sae=sae)


def extractions():
    """Every (model, dataset, split, layer) activation folder the runs read, in a stable order."""
    seen = {(c["model"], c["dataset"], c["layer"]) for c in combos()}
    for model, dataset, layer in sorted(seen):
        for split in SPLITS:
            yield dict(model=model, dataset=dataset, split=split, layer=layer)


def per_combo(pattern):
    return [pattern.format(**c) for c in combos()]


RUN = "{model}/{layer}/{dataset}/{sae}"
ACTS = f"{R}/activations/{{model}}/{{dataset}}/{{split}}/{{layer}}"
