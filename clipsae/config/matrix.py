"""The experiment matrix: which (model, layer, training dataset, SAE) runs a config asks for, and
which datasets each run is evaluated on.

A ``saes`` entry holds the SAE's hyper-parameters (``clipsae.sae.entry``) and, optionally, where
it runs: ``models`` and ``layers`` (default: every model, each at its own ``layers``),
``train: {dataset, split, max_images, subsample_seed}`` (default: every dataset, its ``train``
split, all of it) and ``eval`` (default: the run's own training dataset). Without them an entry
is trained on every model x layer x dataset and evaluated on its training dataset, as before the
matrix existed, so a config that names none of them plans the same jobs.

``published`` holds the figures of the paper an entry reproduces, for the report's "published vs
ours"; nothing reads it to run a job.

``align_with`` names another entry trained alike with a different ``seed``: every (model, layer,
dataset) the two share gets a seed-to-seed alignment of their dictionaries (``alignments``).

Torch-free (pure dict work): the Snakefile expands the matrix at parse time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

# Keys of a `saes` entry that place the SAE in the matrix or document it; the rest configure it.
MATRIX_KEYS = ("models", "layers", "train", "eval", "published", "align_with")
SPLITS = ("train", "test")


@dataclass(frozen=True, kw_only=True)
class TrainingData:
    """The rows an SAE is trained on: a split of one dataset, optionally a seeded subsample of
    ``max_images`` of its rows; validation uses the other split."""

    split: str = "train"
    max_images: int | None = None
    subsample_seed: int = 0

    @property
    def val_split(self) -> str:
        return SPLITS[1 - SPLITS.index(self.split)]

    def to_params(self) -> dict[str, Any]:
        return asdict(self)


def sae_hyperparameters(entry: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``saes`` entry that makes the SAE (its arch config and training recipe):
    what ``train_sae``'s output depends on besides its data."""
    return {key: value for key, value in entry.items() if key not in MATRIX_KEYS}


def training_data(entry: dict[str, Any]) -> TrainingData:
    train = entry.get("train", {})
    return TrainingData(
        split=train.get("split", "train"),
        max_images=train.get("max_images"),
        subsample_seed=train.get("subsample_seed", 0),
    )


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _train_datasets(config: dict, entry: dict) -> list[str]:
    chosen = entry.get("train", {}).get("dataset")
    return list(config["datasets"]) if chosen is None else _as_list(chosen)


def runs(config: dict) -> Iterator[dict[str, str]]:
    """Every (model, layer, dataset, sae) run, ``dataset`` being the training dataset, in config
    order: model, then layer, then dataset, then SAE (the order before the matrix)."""
    saes = config["saes"]
    for model, model_entry in config["models"].items():
        layers = {sae: entry.get("layers", model_entry["layers"]) for sae, entry in saes.items()}
        extra = [layer for sae_layers in layers.values() for layer in sae_layers]
        for layer in dict.fromkeys([*model_entry["layers"], *extra]):
            for dataset in config["datasets"]:
                for sae, entry in saes.items():
                    if (
                        model in entry.get("models", config["models"])
                        and layer in layers[sae]
                        and dataset in _train_datasets(config, entry)
                    ):
                        yield {"model": model, "layer": layer, "dataset": dataset, "sae": sae}


def eval_datasets(entry: dict, train_dataset: str) -> list[str]:
    return list(entry.get("eval", [train_dataset]))


def evaluations(config: dict) -> Iterator[dict[str, str]]:
    """Every run once per dataset it is evaluated on (``evalset``)."""
    for run in runs(config):
        for evalset in eval_datasets(config["saes"][run["sae"]], run["dataset"]):
            yield {**run, "evalset": evalset}


def alignments(config: dict) -> Iterator[dict[str, str]]:
    """Every run of an SAE with ``align_with`` whose partner has a run on the same (model, layer,
    dataset), with the partner's name as ``partner``, in run order."""
    keys = {(r["model"], r["layer"], r["dataset"], r["sae"]) for r in runs(config)}
    for run in runs(config):
        partner = config["saes"][run["sae"]].get("align_with")
        if partner is not None and (run["model"], run["layer"], run["dataset"], partner) in keys:
            yield {**run, "partner": partner}


def _places(config: dict, sae: str) -> set[tuple[str, str, str]]:
    return {(r["model"], r["layer"], r["dataset"]) for r in runs(config) if r["sae"] == sae}


def check_alignment(config: dict, default_seed: int) -> list[str]:
    """``align_with`` problems, each with its key path: the partner must be another defined
    entry trained alike (the same hyper-parameters and training data) with another seed, on at
    least one (model, layer, dataset) this entry is also trained on."""
    problems = []
    saes = config["saes"]
    for sae, entry in saes.items():
        partner = entry.get("align_with")
        if partner is None:
            continue
        where = f"saes.{sae}.align_with"
        if partner == sae:
            problems.append(f"{where}: an entry cannot be aligned with itself")
            continue
        if partner not in saes:
            defined = ", ".join(sorted(saes))
            problems.append(f"{where}: {partner!r} is not defined (defined: {defined})")
            continue
        ours, theirs = sae_hyperparameters(entry), sae_hyperparameters(saes[partner])
        differ = sorted(
            key
            for key in set(ours) | set(theirs)
            if key != "seed" and ours.get(key) != theirs.get(key)
        )
        if differ:
            problems.append(
                f"{where}: {partner!r} is not trained alike: {', '.join(differ)} differ "
                "(only seed may)"
            )
        if training_data(entry) != training_data(saes[partner]):
            problems.append(f"{where}: {partner!r} is trained on other rows (train differs)")
        seeds = ours.get("seed", default_seed), theirs.get("seed", default_seed)
        if seeds[0] == seeds[1]:
            problems.append(
                f"{where}: {partner!r} has the same seed ({seeds[0]}); set another seed on one"
            )
        if not _places(config, sae) & _places(config, partner):
            problems.append(
                f"{where}: {partner!r} has no run on a (model, layer, dataset) of this one"
            )
    return problems


def check_matrix(config: dict) -> list[str]:
    """Names in ``saes`` entries that the config does not define, each with its key path."""
    problems = []
    datasets, models = set(config["datasets"]), set(config["models"])
    for sae, entry in config["saes"].items():
        where = f"saes.{sae}"
        named = [
            ("models", entry.get("models", []), models),
            ("train.dataset", _as_list(entry.get("train", {}).get("dataset", [])), datasets),
            ("eval", entry.get("eval", []), datasets),
        ]
        for key, values, known in named:
            for value in values:
                if value not in known:
                    defined = ", ".join(sorted(known))
                    problems.append(f"{where}.{key}: {value!r} is not defined (defined: {defined})")
        evaluated = set(entry.get("eval", _train_datasets(config, entry)))
        for key in entry.get("published", {}).get("on", {}):
            if key not in evaluated:
                problems.append(
                    f"{where}.published.on.{key}: {key!r} is not among the datasets it is "
                    f"evaluated on ({', '.join(sorted(evaluated))})"
                )
    return problems
