"""A Python stand-in for wrk (used only when wrk cannot be installed).

`python -m bench.pyload URL CASE IDS_DIR SECONDS CONNECTIONS [PREFIX]` keeps CONNECTIONS
HTTP/1.1 keep-alive connections busy with the same bodies as bench/calls.lua and prints
the same `BENCH_RESULT {...}` line. It is slower than wrk and competes harder for the
CPU, so absolute numbers are lower; compare ratios only.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit


def _bodies(case: str, ids_dir: Path) -> tuple[str, object]:
    if case == "get":
        ids = (ids_dir / "messages.txt").read_text().split()
        return "query", lambda: {"path": "messages:get", "args": {"id": random.choice(ids)}}
    if case == "newest":
        return "query", lambda: {
            "path": "messages:newest_by_author",
            "args": {"author": f"author-{random.randrange(1000):04d}"},
        }
    if case == "create":
        return "mutation", lambda: {
            "path": "messages:create",
            "args": {"author": f"author-{random.randrange(1000):04d}", "body": "bench message"},
        }
    accounts = (ids_dir / "accounts.txt").read_text().split()
    return "mutation", lambda: {
        "path": "accounts:transfer",
        "args": dict(zip(("fromId", "toId"), random.sample(accounts, 2), strict=True), amount=1),
    }


async def _worker(
    host: str, port: int, path: str, make: object, until: float, lat: list[float], errs: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    while time.perf_counter() < until:
        body = json.dumps({**make(), "format": "convex_encoded_json"}).encode()  # type: ignore[operator]
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        t0 = time.perf_counter()
        writer.write(head + body)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        data = await reader.readexactly(length)
        lat.append(time.perf_counter() - t0)
        if b" 200 " not in status_line or b'"status":"success"' not in data:
            errs[0] += 1
    writer.close()


async def main(argv: list[str]) -> None:
    """Run the load and print one BENCH_RESULT line."""
    url, case, ids_dir, seconds, conns = argv[:5]
    prefix = argv[5] if len(argv) > 5 else ""
    parts = urlsplit(url)
    kind, make = _bodies(case, Path(ids_dir))
    lat: list[float] = []
    errs = [0]
    start = time.perf_counter()
    until = start + float(seconds)
    await asyncio.gather(
        *(
            _worker(parts.hostname or "127.0.0.1", parts.port or 80,
                    f"{prefix}/api/{kind}", make, until, lat, errs)
            for _ in range(int(conns))
        )
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    lat.sort()

    def pct(p: float) -> int:
        return int(lat[min(len(lat) - 1, int(len(lat) * p))] * 1e6) if lat else 0

    result = {
        "requests": len(lat), "duration_us": int(elapsed * 1e6), "p50_us": pct(0.5),
        "p99_us": pct(0.99), "max_us": pct(1.0), "app_errors": errs[0],
        "socket_errors": 0, "non2xx": 0,
    }  # fmt: skip
    print("BENCH_RESULT " + json.dumps(result))


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(sys.argv[1:]))
