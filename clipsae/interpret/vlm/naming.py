"""Name every latent of a collage folder through a VLM, within a budget, from the cache first.

Each latent ends with one status:

- ``ok``: a well-formed answer (this run's, or the cache's);
- ``malformed``: two answers without the fields (asked once more after the first);
- ``budget``: ``max_requests`` ran out before it was asked;
- ``skipped``: the key's environment variable is not set, so nothing was asked;
- ``error``: the request failed for good (retries spent, or a non-retryable HTTP status).

Every answer is cached the moment it arrives, so a rerun asks only for ``budget``, ``skipped`` and
``error`` latents (and re-asks a malformed first answer once). A refused key (401 / 403) stops the
run with ``VLMAuthError``; the first request goes out alone, so a wrong key costs one request.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from clipsae.interpret.vlm.answer import answer_fields, build_prompt, parse_answer
from clipsae.interpret.vlm.cache import AnswerCache, cache_key
from clipsae.interpret.vlm.client import ChatClient, VLMAuthError, VLMError
from clipsae.interpret.vlm.config import VLMConfig
from clipsae.runtime.atomic import atomic_output, atomic_write_json

log = logging.getLogger(__name__)
Question = TypeVar("Question")
Answer = TypeVar("Answer")

COLLAGE_NAME = re.compile(r"^latent_(\d+)\.jpg$")
OK, MALFORMED, BUDGET, SKIPPED, ERROR = "ok", "malformed", "budget", "skipped", "error"
ASKS_PER_LATENT = 2  # a malformed answer is asked for once more


@dataclass(frozen=True)
class Collage:
    latent: int
    path: Path
    sha256: str


@dataclass(frozen=True)
class LatentName:
    """One latent's outcome; ``fields`` (label_en, ...) is filled only when ``status`` is ok."""

    latent: int
    status: str
    fields: dict[str, str] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class VLMResult:
    names: list[LatentName]  # by latent
    requests: int  # chat completions this run asked for
    cached: int  # latents answered from the cache alone
    skipped_reason: str | None = None

    @property
    def unnamed(self) -> list[int]:
        return [name.latent for name in self.names if name.status != OK]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(name.status for name in self.names).items()))


def find_collages(folder: Path) -> list[Collage]:
    """Every ``latent_NNNNN.jpg`` in ``folder``, by latent, with the SHA-256 of its bytes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"collage folder {folder} does not exist")
    collages = []
    for path in folder.iterdir():
        match = COLLAGE_NAME.match(path.name)
        if match:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            collages.append(Collage(int(match.group(1)), path, digest))
    return sorted(collages, key=lambda collage: collage.latent)


class Budget:
    """At most ``limit`` requests over all threads (``None``: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._limit is not None and self.used >= self._limit:
                return False
            self.used += 1
            return True


@dataclass(frozen=True)
class _Question:
    collage: Collage
    key: str
    asked: int  # answers already cached for it (1: a malformed one, to be asked once more)


def _outcome(latent: int, *, content: str, asked: int, fields: Sequence[str]) -> LatentName | None:
    """The name an answer gives, or None while a malformed answer still deserves its re-ask."""
    parsed = parse_answer(content, fields)
    if parsed is not None:
        return LatentName(latent, OK, parsed)
    if asked >= ASKS_PER_LATENT:
        return LatentName(latent, MALFORMED, detail=f"answer without the fields: {content[:200]!r}")
    return None


class _Asker:
    """Asks the questions a run still has, sharing one budget and one cache over the threads."""

    def __init__(self, config: VLMConfig, *, cache: AnswerCache, api_key: str | None) -> None:
        self.config = config
        self.cache = cache
        self.prompt = build_prompt(config.languages)
        self.fields = answer_fields(config.languages)
        self.budget = Budget(config.max_requests)
        self.client = ChatClient(config, api_key)

    def ask(self, question: _Question) -> LatentName:
        latent = question.collage.latent
        image = question.collage.path.read_bytes()
        asked = question.asked
        while True:  # ends by the second answer at the latest (_outcome)
            if not self.budget.take():
                return LatentName(latent, BUDGET, detail="max_requests reached")
            try:
                content = self.client.complete(prompt=self.prompt, image=image)
            except VLMAuthError:
                raise
            except VLMError as error:
                log.warning("latent %d: %s", latent, error)
                return LatentName(latent, ERROR, detail=str(error))
            asked += 1
            self._store(question, content=content, asked=asked)
            name = _outcome(latent, content=content, asked=asked, fields=self.fields)
            if name is not None:
                return name
            log.warning("latent %d: malformed answer, asking once more: %.200r", latent, content)

    def _store(self, question: _Question, *, content: str, asked: int) -> None:
        self.cache.put(
            question.key,
            {
                "latent": question.collage.latent,
                "collage": question.collage.path.name,
                "endpoint": self.config.endpoint,
                "model": self.config.model,
                "image_sha256": question.collage.sha256,
                "prompt_sha256": hashlib.sha256(self.prompt.encode()).hexdigest(),
                "answers": asked,
                "content": content,
            },
        )

    def ask_all(self, questions: Sequence[_Question]) -> list[LatentName]:
        return ask_concurrently(self.ask, questions, concurrency=self.config.concurrency)


def ask_concurrently(
    ask: Callable[[Question], Answer], questions: Sequence[Question], *, concurrency: int
) -> list[Answer]:
    """``ask`` each question, the first alone (a refused key costs one request), the rest on
    ``concurrency`` threads; answers in completion order. An exception (a refused key above all)
    starts nothing more and is raised."""
    answers = [ask(questions[0])]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(ask, question) for question in questions[1:]]
        try:
            answers += [future.result() for future in as_completed(futures)]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return answers


def name_collages(collages: Sequence[Collage], *, config: VLMConfig, cache_dir: Path) -> VLMResult:
    """Name ``collages`` from the cache, then by asking the VLM for what is missing.

    Raises ``VLMAuthError`` if the endpoint refuses the key; everything else ends in a status.
    """
    cache = AnswerCache(cache_dir)
    prompt = build_prompt(config.languages)
    fields = answer_fields(config.languages)
    names: dict[int, LatentName] = {}
    questions = []
    for collage in collages:
        key = cache_key(
            endpoint=config.endpoint, model=config.model, prompt=prompt, image_sha256=collage.sha256
        )
        entry = cache.get(key)
        asked = entry["answers"] if entry else 0
        name = (
            _outcome(collage.latent, content=entry["content"], asked=asked, fields=fields)
            if entry
            else None
        )
        if name is None:
            questions.append(_Question(collage, key, asked))
        else:
            names[collage.latent] = name
    cached = len(names)

    api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
    skipped_reason = None
    requests = 0
    if questions and config.api_key_env and not api_key:
        skipped_reason = f"environment variable {config.api_key_env} is not set"
        log.warning("VLM naming skipped: %s (%d latents unnamed)", skipped_reason, len(questions))
        names |= {q.collage.latent: LatentName(q.collage.latent, SKIPPED) for q in questions}
    elif questions:
        asker = _Asker(config, cache=cache, api_key=api_key)
        try:
            names |= {name.latent: name for name in asker.ask_all(questions)}
        finally:
            requests = asker.budget.used
            asker.client.close()
    result = VLMResult(
        [names[latent] for latent in sorted(names)], requests, cached, skipped_reason
    )
    log.info(
        "VLM names for %d latents: %s (%d from the cache, %d requests to %s)",
        len(result.names), result.counts(), cached, requests, config.endpoint,
    )  # fmt: skip
    if result.unnamed:
        log.warning("latents left unnamed: %s", result.unnamed)
    return result


def write_names_csv(result: VLMResult, path: Path, *, languages: Sequence[str]) -> None:
    """``latent, label_*, description_*, status``: one row per collage, empty names unless ok."""
    columns = ["latent", *answer_fields(languages), "status"]
    with atomic_output(Path(path)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for name in result.names:
            writer.writerow({"latent": name.latent, **name.fields, "status": name.status})


def write_summary(result: VLMResult, path: Path, *, config: VLMConfig) -> None:
    """What the report needs to say about the run: counts, the unnamed, why it was skipped."""
    atomic_write_json(
        {
            "endpoint": config.endpoint,
            "model": config.model,
            "requests": result.requests,
            "cached": result.cached,
            "counts": result.counts(),
            "skipped_reason": result.skipped_reason,
            "unnamed": result.unnamed,
            "errors": {str(n.latent): n.detail for n in result.names if n.status == ERROR},
        },
        path,
    )


def run_vlm_naming(
    collage_dir: Path,
    *,
    config: VLMConfig,
    out_csv: Path,
    cache_dir: Path,
    summary: Path | None = None,
) -> VLMResult:
    """The ``interpret-vlm`` step: name a collage folder and write the CSV (and summary)."""
    collages = find_collages(collage_dir)
    if not collages:
        log.warning("no latent_NNNNN.jpg collages in %s", collage_dir)
    result = name_collages(collages, config=config, cache_dir=cache_dir)
    write_names_csv(result, out_csv, languages=config.languages)
    if summary is not None:
        write_summary(result, summary, config=config)
    return result
