"""Config validation, wildcard constraints and the helpers the rules share."""

import os
import re
from pathlib import Path

from clipsae.config import matrix
from clipsae.config.prompts import load_prompts
from clipsae.config.validate import validate_config
from clipsae.data import dataset_source_spec
from clipsae.data.synthetic import SyntheticSpec
from clipsae.models.weights import (
    SHIPPED,
    built_record,
    built_weights,
    shipped_record,
    shipped_weights,
)
from clipsae.runtime.fingerprint import code_fingerprint

config = validate_config(config, Path(workflow.basedir))

R = "results"
SPLITS = list(matrix.SPLITS)
# Settings that change how a job runs, never what it writes. Rule params are Snakemake's rerun
# triggers, so these stay out of them; the scripts read them from `snakemake.config`.
# (`device`, and `threads`/`resources`, which are not params anyway, belong here too.)
MODEL_EXECUTION_KEYS = ("batch_size",)
EXTRACTION_EXECUTION_KEYS = ("num_workers",)

# Defaults for every rule; config `resources.<rule>` overrides any of them. Two threads only
# where a step's own compute is the bulk of its time (a model forward, SAE training); the
# others are short, and a one-thread job lets Snakemake run another one beside it.
DEFAULT_RESOURCES = {
    "prepare_dataset": dict(threads=1, mem_mb=2000, runtime=30, gpu=0),
    "build_embedded_clip": dict(threads=2, mem_mb=4000, runtime=60, gpu=1),
    "extract_image": dict(threads=2, mem_mb=8000, runtime=240, gpu=1),
    "embed_text": dict(threads=2, mem_mb=4000, runtime=30, gpu=1),
    "train_sae": dict(threads=2, mem_mb=16000, runtime=480, gpu=1),
    "eval_reconstruction": dict(threads=1, mem_mb=8000, runtime=60, gpu=0),
    "eval_zeroshot": dict(threads=1, mem_mb=8000, runtime=120, gpu=1),
    "eval_extras": dict(threads=1, mem_mb=8000, runtime=60, gpu=0),
    "eval_splice": dict(threads=1, mem_mb=4000, runtime=60, gpu=0),
    "sae_alignment": dict(threads=1, mem_mb=4000, runtime=30, gpu=0),
    "encode_features": dict(threads=1, mem_mb=8000, runtime=120, gpu=1),
    "collages": dict(threads=1, mem_mb=2000, runtime=30, gpu=0),
    "name_by_vocab": dict(threads=1, mem_mb=4000, runtime=30, gpu=0),
    "ground_truth": dict(threads=1, mem_mb=4000, runtime=30, gpu=0),
    "steering": dict(threads=1, mem_mb=4000, runtime=30, gpu=0),
    "interpret_vlm": dict(threads=1, mem_mb=2000, runtime=120, gpu=0),
    "clean_interpretations": dict(threads=1, mem_mb=4000, runtime=30, gpu=0),
    "explore": dict(threads=1, mem_mb=4000, runtime=30, gpu=0),
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
    evalset=names("datasets"),
    sae=names("saes"),
    split="|".join(SPLITS),
    layer=r"final|block\d+",


def model_entry(w):
    """What a model's outputs depend on: its weights, not which layers or at what batch size."""
    entry = config["models"][w.model]
    skip = ("layers", *MODEL_EXECUTION_KEYS)
    return {key: value for key, value in entry.items() if key not in skip}


def dataset_source(w):
    """The image source of a dataset, without its templates (those only reach embed_text)."""
    return dataset_source_spec(config["datasets"][w.dataset])


def eval_dataset_source(w):
    return dataset_source_spec(config["datasets"][w.evalset])


def extraction_settings():
    """Shard dtype and size: what an extraction writes, without the DataLoader workers."""
    settings = config["extraction"].items()
    return {
        key: value for key, value in settings if key not in EXTRACTION_EXECUTION_KEYS
    }


def code(rule_name):
    """The rerun trigger for library code: a hash of what the rule's script imports, so an
    edit to it reruns the rule (and, through its outputs, everything downstream)."""
    return code_fingerprint(
        Path(workflow.basedir) / "workflow_scripts" / f"{rule_name}.py"
    )


def text_source(w):
    if w.name == "vocab":
        return config["vocabulary"]
    return f"{R}/data/{w.name.removeprefix('classes_')}/classes.json"


def text_prompts(w):
    """The class prompts of a dataset (templates, and class names from a published ensemble),
    resolved from `config/zeroshot` files here, so an edited file reruns its embeddings.
    """
    if w.name == "vocab":
        return None
    templates = config["datasets"][w.name.removeprefix("classes_")].get("templates")
    if templates is None:
        return None
    return load_prompts(templates, Path(workflow.basedir)).to_params()


def model_weights(w):
    """The built checkpoint for `pretrained: build` models, the package's file for `shipped`
    (so that new shipped weights rerun what used the old); nothing for tags and paths.
    """
    entry = config["models"][w.model]
    if entry["pretrained"] == "build":
        return str(built_weights(f"{R}/models", w.model))
    if entry["pretrained"] == SHIPPED:
        return str(shipped_weights(entry["arch"]))
    return []


def model_records():
    """Per model that is built or shipped: its name and the record of its build."""
    records = {}
    for name, entry in config["models"].items():
        if entry["pretrained"] == "build":
            records[name] = str(built_record(f"{R}/models", name))
        elif entry["pretrained"] == SHIPPED:
            records[name] = str(shipped_record(entry["arch"]))
    return records


def combos():
    """Every (model, layer, dataset, sae) run the config's matrix asks for (clipsae.config.matrix):
    ``dataset`` is the one the SAE is trained on."""
    return matrix.runs(config)


def evaluations():
    """Every run once per dataset it is evaluated on (``evalset``)."""
    return matrix.evaluations(config)


def extractions():
    """Every (model, dataset, split, layer) activation folder the runs read, in a stable order:
    both splits of every dataset a run is trained on (train, validate) or evaluated on (the
    linear probe is fitted on the train split, everything is scored on the test split).
    """
    used = {(c["model"], c["dataset"], c["layer"]) for c in combos()}
    used |= {(e["model"], e["evalset"], e["layer"]) for e in evaluations()}
    for model, dataset, layer in sorted(used):
        for split in SPLITS:
            yield dict(model=model, dataset=dataset, split=split, layer=layer)


def published_figures():
    """The `published` block of each `saes` entry that has one: read by the report alone."""
    saes = config["saes"].items()
    return {name: entry["published"] for name, entry in saes if "published" in entry}


def splice_pairs():
    """Every (model, evaluation dataset) with an evaluation at ``final``, in a stable order: the
    SpLiCE baseline decomposes the final embedding, whose two splits these evaluations extract.
    """
    pairs = {(e["model"], e["evalset"]) for e in evaluations() if e["layer"] == "final"}
    return [dict(model=model, dataset=dataset) for model, dataset in sorted(pairs)]


def alignments():
    """Every run of an SAE with ``align_with`` whose partner is trained on the same (model,
    layer, dataset): the pairs whose dictionaries are aligned."""
    return list(matrix.alignments(config))


def partner_sae(w):
    """The SAE files of the run's ``align_with`` partner on the same model, layer and dataset."""
    partner = config["saes"][w.sae]["align_with"]
    run = RUN.format(model=w.model, layer=w.layer, dataset=w.dataset, sae=partner)
    return [f"{R}/sae/{run}/sae_weights.safetensors", f"{R}/sae/{run}/cfg.json"]


def per_combo(pattern):
    return [pattern.format(**c) for c in combos()]


def per_eval(pattern):
    return [pattern.format(**e) for e in evaluations()]


def sae_hyperparameters(w):
    """What makes the SAE of a run (its arch config and recipe), without where it runs."""
    return matrix.sae_hyperparameters(config["saes"][w.sae])


def training_data(w):
    return matrix.training_data(config["saes"][w.sae])


RUN = "{model}/{layer}/{dataset}/{sae}"
# A run's evaluation on one dataset: the run's training dataset and the evaluation dataset are
# both in the path, so changing an `eval` list reruns only those evaluations.
EVAL = f"{RUN}/on_{{evalset}}"
ACTS = f"{R}/activations/{{model}}/{{dataset}}/{{split}}/{{layer}}"
EVAL_ACTS = f"{R}/activations/{{model}}/{{evalset}}/test/{{layer}}"


# Settings that change how hard the VLM client tries, not what a name is: kept out of params
# (as is `interpret.cache`, where answers are kept).
VLM_EXECUTION_KEYS = ("concurrency", "timeout_s", "retries", "backoff_factor")


def vlm_naming_params(w):
    """What a VLM name depends on, plus whether the key is set (never the key itself): with no
    key the rule writes 'skipped' rows, and setting the key later reruns it."""
    vlm = config["interpret"]["vlm"]
    env = vlm.get("api_key_env", "OPENROUTER_API_KEY")
    key = "none needed" if env is None else ("set" if os.environ.get(env) else "unset")
    kept = {k: v for k, v in vlm.items() if k not in VLM_EXECUTION_KEYS}
    return {**kept, "api_key": key}


def truth_runs():
    """The runs on generated datasets, where every image's factor values are known."""
    for c in combos():
        if config["datasets"][c["dataset"]]["source"] == "synthetic":
            yield c


def steering_runs():
    return [c for c in truth_runs() if c["layer"] == "final"]


def factor_of(dataset):
    """The factor a generated dataset's labels are (its classes)."""
    return config["datasets"][dataset].get("label_by", SyntheticSpec.label_by)


def other_classes(w):
    """Class embeddings of another generated dataset labelled by another factor: steering
    should change this dataset's predictions and leave that one's alone."""
    label_by = factor_of(w.dataset)
    for name, entry in config["datasets"].items():
        if entry["source"] == "synthetic" and factor_of(name) != label_by:
            return f"{R}/text/{w.model}/classes_{name}.npy"
    return []
