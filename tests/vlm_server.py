"""A real OpenAI-compatible chat server on 127.0.0.1 with scripted answers, for the VLM tests.

Requests are answered in arrival order from ``script`` (a list of ``Reply``), then by the
image's entry in ``contents``, then by ``default_content``, which names a collage by the latent its
image belongs to, and for an image that is no known collage (a simulation grid) by ``fallback``.
Every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHAT_PATH = "/v1/chat/completions"


@dataclass
class Reply:
    """One scripted response; ``content`` None means the default answer for the image."""

    status: int = 200
    content: str | None = None
    body: str | None = None  # raw body instead of a chat-completions JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hold: bool = False  # wait until ``VLMServer.release`` is set (a request that never returns)


def default_content(latent: int) -> str:
    return json.dumps(
        {
            "label_en": f"concept {latent}",
            "label_ru": f"понятие {latent}",
            "description_en": f"Images of concept {latent}.",
            "description_ru": f"Изображения понятия {latent}.",
        },
        ensure_ascii=False,
    )


class VLMServer:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.latents: dict[str, int] = {}  # image SHA-256 -> latent
        self.contents: dict[str, str] = {}  # image SHA-256 -> answer content, over the default
        self.fallback: str | None = None  # the answer for an image of no known collage
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def add_collages(self, folder: Path) -> None:
        """Learn which latent each ``latent_NNNNN.jpg`` in ``folder`` is, by its bytes."""
        for path in folder.glob("latent_*.jpg"):
            self.latents[hashlib.sha256(path.read_bytes()).hexdigest()] = int(path.stem[7:])

    def __enter__(self) -> VLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, request: dict) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.script.pop(0) if self.script else Reply()

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1


def image_of(request: dict) -> bytes:
    url = request["body"]["messages"][0]["content"][1]["image_url"]["url"]
    return base64.b64decode(url.split("base64,", 1)[1])


def _handler(server: VLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            request = {"path": self.path, "headers": dict(self.headers), "body": json.loads(raw)}
            reply = server._next(request)
            try:
                self._answer(request, reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)
            finally:
                server._done()

        def _answer(self, request: dict, reply: Reply) -> None:
            if reply.hold:
                server.holding.set()
                server.release.wait(120)
            server.release.wait(reply.delay)
            if self.path != CHAT_PATH:
                reply = Reply(status=404, body="no such endpoint")
            if reply.body is not None:
                data = reply.body.encode()
            else:
                content = reply.content
                if content is None:
                    image = hashlib.sha256(image_of(request)).hexdigest()
                    content = server.contents.get(image)
                    if content is None and image in server.latents:
                        content = default_content(server.latents[image])
                    content = server.fallback if content is None else content
                data = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": content}}]}
                ).encode()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
