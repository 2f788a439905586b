"""Call one function at a fixed rate over raw HTTP/1.1 keep-alive connections.

`python -m bench.paced_load URL KIND PATH RATE SECONDS [CONNECTIONS]` calls `POST
/api/KIND` (query, mutation, action) with `{"path": PATH, "args": {}}` RATE times a
second for SECONDS, spread
evenly over CONNECTIONS connections (default 16), and prints one JSON line: calls made,
calls per second reached, failures. The client is a few lines over asyncio streams, so
a thousand calls a second cost it a few percent of a core, not the load it measures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def _connection(
    host: str, port: int, request: bytes, start: float, step: float, end: float
) -> tuple[int, int]:
    """One connection's share: a call every `step` seconds from `start` until `end`."""
    reader, writer = await asyncio.open_connection(host, port)
    done = failed = 0
    due = start
    try:
        while due < end:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200") and b'"success"' in body:
                done += 1
            else:
                failed += 1
            due += step
    finally:
        writer.close()
    return done, failed


async def run(
    url: str, kind: str, path: str, rate: float, seconds: float, connections: int = 16
) -> dict:  # type: ignore[type-arg]
    """Call `path` (a `kind`) at `rate` calls a second for `seconds`; what was reached."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = json.dumps({"path": path, "args": {}, "format": "json"}).encode()
    request = (
        f"POST /api/{kind} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    step = connections / rate
    start = time.monotonic() + 0.2
    end = start + seconds
    results = await asyncio.gather(
        *(
            _connection(host, port, request, start + i * step / connections, step, end)
            for i in range(connections)
        )
    )
    took = max(time.monotonic(), end) - start
    done = sum(r[0] for r in results)
    return {
        "calls": done,
        "failed": sum(r[1] for r in results),
        "callsPerSecond": round(done / took, 1),
        "seconds": round(took, 2),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    out = asyncio.run(
        run(
            args[0],
            args[1],
            args[2],
            float(args[3]),
            float(args[4]),
            int(args[5]) if len(args) > 5 else 16,
        )
    )
    print(json.dumps(out))
