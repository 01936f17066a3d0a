"""``interpret.vlm``: which OpenAI-compatible endpoint names the latents, and how hard to try.

Every value is checked when the config is built, so a typo fails before the first request is paid
for, with a message naming the key.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clipsae.runtime.errors import ConfigError

# Languages the prompt can ask for, by the code used in the answer's field names.
LANGUAGES = {
    "en": "English",
    "ru": "Russian",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "uk": "Ukrainian",
    "zh": "Chinese",
    "ja": "Japanese",
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class VLMConfig:
    """Settings of one naming run; the defaults name latents through OpenRouter's GPT-4o-mini.

    ``max_requests`` counts chat completions this run asks for (the re-ask after a malformed
    answer included, transport retries after 429 / 5xx / timeouts not); ``None`` means no budget.
    ``api_key_env`` is the *name* of the variable holding the key, ``None`` for a local server
    that needs none. Back-off before retry n is ``backoff_factor * 2**(n-1)`` seconds plus up to
    ``backoff_factor`` of jitter (urllib3's schedule: the first retry is immediate), unless the
    server's ``Retry-After`` says otherwise.
    """

    base_url: str = "https://openrouter.ai/api/v1"
    model: str = "openai/gpt-4o-mini"
    api_key_env: str | None = "OPENROUTER_API_KEY"
    max_requests: int | None = 500
    concurrency: int = 4
    timeout_s: float = 60.0
    temperature: float = 0.0
    languages: tuple[str, ...] = ("en", "ru")
    retries: int = 5
    backoff_factor: float = 1.0
    max_tokens: int = 400

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("\n".join(problems))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], where: str = "interpret.vlm") -> VLMConfig:
        """Build from a config mapping, rejecting unknown keys; messages start with ``where``."""
        allowed = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(mapping) - set(allowed))
        problems = [f"unknown key {key!r} (allowed: {', '.join(allowed)})" for key in unknown]
        values = dict(mapping)
        if isinstance(values.get("languages"), list):
            values["languages"] = tuple(values["languages"])
        if not problems:
            try:
                return cls(**values)
            except ConfigError as error:
                problems = str(error).splitlines()
        raise ConfigError("\n".join(f"{where}: {problem}" for problem in problems)) from None

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _problems(config: VLMConfig) -> list[str]:
    """Every invalid value of ``config``, as ``key: reason, got value`` lines."""
    checks = {
        "base_url": (
            isinstance(config.base_url, str) and re.match(r"^https?://\S+$", config.base_url),
            "must be an http:// or https:// URL",
        ),
        "model": (isinstance(config.model, str) and config.model.strip(), "must be a model name"),
        "api_key_env": (
            config.api_key_env is None
            or (isinstance(config.api_key_env, str) and _ENV_NAME.match(config.api_key_env)),
            "must be an environment variable name or null (a server that needs no key)",
        ),
        "max_requests": (
            config.max_requests is None
            or (_is_int(config.max_requests) and config.max_requests >= 0),
            "must be an integer >= 0 or null (no budget)",
        ),
        "concurrency": (
            _is_int(config.concurrency) and 1 <= config.concurrency <= 64,
            "must be an integer in 1..64",
        ),
        "timeout_s": (_is_number(config.timeout_s) and config.timeout_s > 0, "must be > 0"),
        "temperature": (
            _is_number(config.temperature) and 0 <= config.temperature <= 2,
            "must be a number in 0..2",
        ),
        "languages": (
            isinstance(config.languages, tuple)
            and config.languages
            and len(set(config.languages)) == len(config.languages)
            and all(code in LANGUAGES for code in config.languages),
            f"must be a non-empty list of distinct codes from {', '.join(LANGUAGES)}",
        ),
        "retries": (_is_int(config.retries) and 0 <= config.retries <= 20, "must be in 0..20"),
        "backoff_factor": (
            _is_number(config.backoff_factor) and config.backoff_factor >= 0,
            "must be a number >= 0",
        ),
        "max_tokens": (_is_int(config.max_tokens) and config.max_tokens >= 16, "must be >= 16"),
    }
    return [
        f"{key}: {reason}, got {getattr(config, key)!r}"
        for key, (ok, reason) in checks.items()
        if not ok
    ]
