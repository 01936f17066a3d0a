"""A disk cache of VLM answers, so that no request is paid for twice.

One JSON file per answer, named by the SHA-256 of (endpoint, model, prompt, image SHA-256) and
written atomically: a run killed at any point leaves only whole entries, and the rerun asks only
for what is missing. The raw answer text is stored, not the parsed fields, so a better parser
needs no new requests.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from clipsae.runtime.atomic import atomic_write_json

log = logging.getLogger(__name__)


def cache_key(*, endpoint: str, model: str, prompt: str, image_sha256: str) -> str:
    """Hex SHA-256 identifying one question; any change to its four parts asks afresh."""
    parts = {"endpoint": endpoint, "model": model, "prompt": prompt, "image_sha256": image_sha256}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class AnswerCache:
    """Entries under ``root`` as ``<key>.json``; unreadable entries count as missing.

    An entry holds at least ``content`` (the last answer's text) and ``answers`` (how many were
    paid for).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable cache entry %s: %s", path, error)
            return None
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("content"), str)
            and isinstance(entry.get("answers"), int)
        ):
            log.warning("ignoring cache entry %s without answer text and count", path)
            return None
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        atomic_write_json(entry, self.path(key))
