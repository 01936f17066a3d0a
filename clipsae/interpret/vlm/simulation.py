"""Simulation scoring of latent names by a VLM, after EleutherAI delphi's simulation / detection.

Detection AUROC (``clipsae.interpret.scoring``) asks CLIP's text tower whether a name picks out
its latent's images; here a VLM is asked, the way a person would judge the name. Per latent, one
request: a numbered grid of a shuffled mix of images that activate the latent (drawn across
quantiles of its activations, as detection scoring draws them) and images that do not, with the
name; the VLM answers with the numbers of the images that show the named concept. Accuracy and F1
against the truth (activating or not) are the name's simulation scores. A VLM that answers "all"
scores the base rate (the share of activating images shown) in accuracy, and ``2p / (1 + p)`` in
F1; one that answers "none" scores ``1 - p`` and 0.

The request goes through the naming client (retries, budget, key redaction) and its answer cache,
keyed by endpoint + model + prompt (which holds the name) + grid image hash, so a rerun pays for
nothing twice. A malformed answer is not re-asked: it is counted and reported, and its raw text
stays cached for a better parser.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score

from clipsae.interpret.collage import make_collage
from clipsae.interpret.scoring import DetectionSampling, sample_detection_rows
from clipsae.interpret.vlm.answer import json_values
from clipsae.interpret.vlm.cache import AnswerCache, cache_key
from clipsae.interpret.vlm.client import ChatClient, VLMAuthError, VLMError
from clipsae.interpret.vlm.config import VLMConfig
from clipsae.interpret.vlm.naming import (
    BUDGET,
    ERROR,
    MALFORMED,
    OK,
    SKIPPED,
    Budget,
    ask_concurrently,
)

log = logging.getLogger(__name__)

UNSCORED = "unscored"  # too few activating images, or no silent one, to make a mix
TILE, COLS = 96, 4
SIMULATION_COLUMNS = ("latent", "label_en", "status", "accuracy", "f1", "n_positive",
                      "n_negative", "predicted")  # fmt: skip


@dataclass(frozen=True)
class Trial:
    """One latent's question: its name, the shown activation rows in grid order (tile ``i`` is
    number ``i + 1``), which of them activate it, and the grid as JPEG bytes."""

    latent: int
    label: str
    rows: np.ndarray
    truth: np.ndarray
    image: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.image).hexdigest()


@dataclass(frozen=True)
class Simulation:
    """``table`` has ``SIMULATION_COLUMNS``, one row per latent asked about; ``summary`` the
    counts, medians and why the run was skipped, for ``interpretations.json`` and the report."""

    table: pl.DataFrame
    summary: dict


def build_prompt(label: str, n_images: int) -> str:
    """The instruction for one grid; it is part of the cache key, so keep it stable."""
    return (
        f"The image is a grid of {n_images} images, numbered 1 to {n_images} in their top-left "
        f'corners. Which of them show "{label}"? Answer with a JSON list of the numbers of the '
        "images that show it, and nothing else, e.g. [2, 5]; answer [] if none does."
    )


def parse_numbers(content: str, n_images: int) -> set[int] | None:
    """The numbers of the first JSON list in ``content`` made only of integers in 1..n_images
    (fences and prose around it are ignored), or None where there is none: a malformed answer."""
    for value in json_values(content, "["):
        if isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= n_images for v in value
        ):
            return set(value)
    return None


def numbered_grid(images: Sequence[Image.Image]) -> bytes:
    """The images as one JPEG grid whose tiles carry their numbers 1..n (the collage's labels)."""
    grid = make_collage(images, list(range(1, len(images) + 1)), "", TILE, COLS)
    buffer = io.BytesIO()
    grid.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def plan_trials(
    latents: Sequence[int],
    labels: Sequence[str],
    activations: np.ndarray,
    *,
    open_row: Callable[[int], Image.Image],
    sampling: DetectionSampling,
) -> tuple[list[Trial], list[int]]:
    """The trials of the latents that can be scored, and the latents that cannot.

    ``activations`` (rows, len(latents)) are the latents' codes on the held-out images that
    ``open_row`` opens. One generator seeded by ``sampling.seed`` draws every latent's sample
    and shuffle in order, so a rerun builds the same grids (and hits the cache).
    """
    rng = np.random.default_rng(sampling.seed)
    trials, unscored = [], []
    for j, (latent, label) in enumerate(zip(latents, labels, strict=True)):
        positive, negative = sample_detection_rows(activations[:, j], sampling=sampling, rng=rng)
        if len(positive) < sampling.min_positive or not len(negative):
            unscored.append(int(latent))
            continue
        rows = rng.permutation(np.concatenate([positive, negative]))
        image = numbered_grid([open_row(int(row)) for row in rows])
        trials.append(Trial(int(latent), label, rows, np.isin(rows, positive), image))
    return trials, unscored


def _scored(trial: Trial, predicted: set[int]) -> dict:
    shown = np.zeros(len(trial.rows), dtype=bool)
    shown[[n - 1 for n in predicted]] = True
    return {
        "accuracy": float(accuracy_score(trial.truth, shown)),
        "f1": float(f1_score(trial.truth, shown, zero_division=0.0)),
        "predicted": json.dumps(sorted(predicted)),
    }


class _Simulator:
    def __init__(self, config: VLMConfig, cache: AnswerCache, api_key: str | None) -> None:
        self.config = config
        self.cache = cache
        self.budget = Budget(config.max_requests)
        self.client = ChatClient(config, api_key)

    def key(self, trial: Trial) -> str:
        prompt = build_prompt(trial.label, len(trial.rows))
        return cache_key(
            endpoint=self.config.endpoint,
            model=self.config.model,
            prompt=prompt,
            image_sha256=trial.sha256,
        )

    def ask(self, trial: Trial) -> tuple[Trial, str, str]:
        """(trial, status, answer text): ``ok`` with the text, or why there is none."""
        if not self.budget.take():
            return trial, BUDGET, ""
        prompt = build_prompt(trial.label, len(trial.rows))
        try:
            content = self.client.complete(prompt=prompt, image=trial.image)
        except VLMAuthError:
            raise
        except VLMError as error:
            log.warning("latent %d: %s", trial.latent, error)
            return trial, ERROR, ""
        entry = {
            "latent": trial.latent,
            "endpoint": self.config.endpoint,
            "model": self.config.model,
            "image_sha256": trial.sha256,
            "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
            "answers": 1,
            "content": content,
        }
        self.cache.put(self.key(trial), entry)
        return trial, OK, content


def simulate(
    trials: Sequence[Trial], *, unscored: Sequence[int], config: VLMConfig, cache_dir: Path
) -> Simulation:
    """Score every trial from the cache, then by asking the VLM for what is missing.

    With ``api_key_env`` set but the variable not, nothing is asked and the missing trials are
    ``skipped``; a refused key raises ``VLMAuthError`` after one request.
    """
    api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
    simulator = _Simulator(config, AnswerCache(cache_dir), api_key)
    answered, missing = [], []
    for trial in trials:
        entry = simulator.cache.get(simulator.key(trial))
        if entry is None:
            missing.append(trial)
        else:
            answered.append((trial, OK, entry["content"]))
    cached = len(answered)
    skipped_reason = None
    if missing and config.api_key_env and not api_key:
        skipped_reason = f"environment variable {config.api_key_env} is not set"
        log.warning("VLM simulation skipped: %s (%d latents)", skipped_reason, len(missing))
        answered += [(trial, SKIPPED, "") for trial in missing]
    elif missing:
        try:
            answered += ask_concurrently(simulator.ask, missing, concurrency=config.concurrency)
        finally:
            simulator.client.close()
    rows = [{"latent": latent, "status": UNSCORED} for latent in unscored]
    for trial, status, content in answered:
        positive = int(trial.truth.sum())
        row = {"latent": trial.latent, "label_en": trial.label, "status": status,
               "n_positive": positive, "n_negative": len(trial.rows) - positive}  # fmt: skip
        if status == OK:
            predicted = parse_numbers(content, len(trial.rows))
            if predicted is None:
                log.warning("latent %d: malformed simulation answer: %.200r", trial.latent, content)
                row["status"] = MALFORMED
            else:
                row |= _scored(trial, predicted)
        rows.append(row)
    table = _table(rows)
    summary = _summary(table, config=config, requests=simulator.budget.used, cached=cached,
                       skipped_reason=skipped_reason)  # fmt: skip
    log.info("VLM simulation: %s", summary)
    return Simulation(table, summary)


def _table(rows: list[dict]) -> pl.DataFrame:
    schema = {"latent": pl.Int64, "label_en": pl.String, "status": pl.String,
              "accuracy": pl.Float64, "f1": pl.Float64, "n_positive": pl.Int64,
              "n_negative": pl.Int64, "predicted": pl.String}  # fmt: skip
    filled = [{column: row.get(column) for column in SIMULATION_COLUMNS} for row in rows]
    return pl.DataFrame(filled, schema=schema).sort("latent")


def _summary(
    table: pl.DataFrame, *, config: VLMConfig, requests: int, cached: int,
    skipped_reason: str | None,
) -> dict:  # fmt: skip
    scored = table.drop_nulls("accuracy")
    shown = scored["n_positive"] + scored["n_negative"]

    def median(values: pl.Series) -> float | None:
        return float(values.median()) if len(values) else None

    return {
        "model": config.model,
        "endpoint": config.endpoint,
        "requests": requests,
        "cached": cached,
        "counts": dict(sorted(Counter(table["status"].to_list()).items())),
        "n_scored": len(scored),
        "median_accuracy": median(scored["accuracy"]),
        "median_f1": median(scored["f1"]),
        "median_base_rate": median(scored["n_positive"] / shown),
        "malformed": table.filter(pl.col("status") == MALFORMED)["latent"].to_list(),
        "skipped_reason": skipped_reason,
    }
