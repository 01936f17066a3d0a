"""One chat completion with an image, against any OpenAI-compatible ``/chat/completions``.

Transport retries are urllib3's ``Retry`` mounted on a ``requests`` session: exponential back-off
with jitter on 429 / 5xx / timeouts / connection errors, ``Retry-After`` honoured. A 401 / 403 is
never retried: it raises ``VLMAuthError`` so the caller stops the whole run. No text this module
raises or returns holds the API key, even where a server echoes it back.
"""

from __future__ import annotations

import base64
import threading

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from clipsae.interpret.vlm.answer import message_text
from clipsae.interpret.vlm.config import VLMConfig

RETRY_STATUSES = (429, 500, 502, 503, 504)
AUTH_STATUSES = (401, 403)
BACKOFF_MAX_S = 60.0
REDACTED = "[redacted]"


class VLMError(RuntimeError):
    """A request that failed for good, after its retries."""


class VLMAuthError(VLMError):
    """The endpoint refused the key (401 / 403): every further request would fail the same way."""


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced."""
    return text.replace(secret, REDACTED) if secret else text


class ChatClient:
    """Sends collages to ``config.endpoint``; safe to share between threads (one session each)."""

    def __init__(self, config: VLMConfig, api_key: str | None) -> None:
        self._config = config
        self._key = api_key or None
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            retry = Retry(
                total=self._config.retries,
                backoff_factor=self._config.backoff_factor,
                backoff_jitter=self._config.backoff_factor,
                backoff_max=BACKOFF_MAX_S,
                status_forcelist=RETRY_STATUSES,
                allowed_methods=None,  # POST too: a completion changes nothing server-side
                respect_retry_after_header=True,
                raise_on_status=False,
            )
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            if self._key:
                session.headers["Authorization"] = f"Bearer {self._key}"
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def complete(self, *, prompt: str, image: bytes, media_type: str = "image/jpeg") -> str:
        """The assistant's answer text ('' if the response carries none).

        Raises ``VLMAuthError`` on 401 / 403 and ``VLMError`` once retries are spent.
        """
        endpoint = self._config.endpoint
        data_url = f"data:{media_type};base64,{base64.b64encode(image).decode('ascii')}"
        body = {
            "model": self._config.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        {"type": "image_url", "image_url": {"url": data_url}},
                    ],
                }
            ],
            "temperature": self._config.temperature,
            "max_tokens": self._config.max_tokens,
        }
        try:
            response = self._session().post(endpoint, json=body, timeout=self._config.timeout_s)
        except requests.RequestException as error:
            raise VLMError(
                self._redact(f"{endpoint}: no answer after {self._config.retries} retries: {error}")
            ) from None
        excerpt = self._redact(" ".join(response.text[:300].split()))
        if response.status_code in AUTH_STATUSES:
            where = f"${self._config.api_key_env}" if self._config.api_key_env else "no key"
            raise VLMAuthError(
                f"HTTP {response.status_code} from {endpoint}: the endpoint refused the API key "
                f"({where}); VLM naming stopped. Server said: {excerpt}"
            )
        if not response.ok:
            raise VLMError(f"HTTP {response.status_code} from {endpoint}: {excerpt}")
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return self._redact(message_text(payload))

    def _redact(self, text: str) -> str:
        return redact(text, self._key)

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
