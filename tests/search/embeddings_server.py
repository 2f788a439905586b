"""A small OpenAI-compatible `/embeddings` endpoint on 127.0.0.1, for tests.

It embeds a text as a normalised bag of hashed words (texts that share words are near),
records every request, and can be told to fail.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def bag_of_words(text: str, dims: int) -> list[float]:
    """A deterministic unit vector: one hashed coordinate per word."""
    vec = [0.0] * dims
    for word in text.lower().split():
        h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")
        vec[h % dims] += 1.0
    vec[0] += 0.01  # never all zeros
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec]


@dataclass
class EmbeddingsServer:
    """What the endpoint saw, and how it should answer."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None
    wrong_length: bool = False


@contextmanager
def embeddings_server() -> Iterator[EmbeddingsServer]:
    """Run the endpoint in a thread for the duration of the block."""
    state = EmbeddingsServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(
                {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
            )
            if state.fail_with is not None:
                self._reply(state.fail_with, {"error": {"message": "nope"}})
                return
            dims = body.get("dimensions", 1536) - (1 if state.wrong_length else 0)
            data = [
                {"object": "embedding", "index": i, "embedding": bag_of_words(text, dims)}
                for i, text in enumerate(body["input"])
            ]
            self._reply(200, {"object": "list", "data": list(reversed(data))})

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
