"""A TCP load balancer for the two-pods test, standing in for a Service and its endpoints.

`python tests/ops/balancer.py PORT BACKEND_PORT...` listens on 127.0.0.1:PORT and hands
each new connection to the next backend (round robin) whose `GET /readyz` answered 200
at the last poll (every 50 ms), like kube-proxy with endpoints driven by readiness. A
connection is pinned to its backend until either side closes it. It prints one line per
event with a wall-clock time: `listening`, `up P`, `down P`, `route N P`.

It runs as a process of its own: the PyPI client's blocking calls hold the GIL, so a
balancer thread inside the test process could stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

POLL_S = 0.05
HOST = "127.0.0.1"


def say(*parts: object) -> None:
    """One event line, flushed."""
    print(f"{time.time():.3f}", *parts, flush=True)


class Balancer:
    """Round robin over ready backends."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.ready: dict[int, bool] = dict.fromkeys(backends, False)
        self.next = 0
        self.routed = 0

    async def poll(self, port: int) -> None:
        """Keep `ready[port]` current from the backend's /readyz."""
        while True:
            ok = await _readyz(port)
            if ok != self.ready[port]:
                self.ready[port] = ok
                say("up" if ok else "down", port)
            await asyncio.sleep(POLL_S)

    def order(self) -> list[int]:
        """Ready backends, starting at the round-robin position."""
        n = len(self.backends)
        picks = [self.backends[(self.next + i) % n] for i in range(n)]
        self.next = (self.next + 1) % n
        return [p for p in picks if self.ready[p]]

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        """Pipe one client connection to a ready backend."""
        for port in self.order():
            try:
                backend_r, backend_w = await asyncio.open_connection(HOST, port)
            except OSError:
                continue  # refused: nothing was sent yet, so try the next one
            self.routed += 1
            say("route", self.routed, port)
            pipes = [
                asyncio.create_task(_pipe(client_r, backend_w)),
                asyncio.create_task(_pipe(backend_r, client_w)),
            ]
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            for task in pipes:
                task.cancel()
            for w in (backend_w, client_w):
                with contextlib.suppress(Exception):
                    w.close()
            return
        client_w.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()


async def _readyz(port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 0.5)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 1.0)
        return line.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False
    finally:
        writer.close()


async def main(port: int, backends: list[int]) -> None:
    """Serve until killed."""
    lb = Balancer(backends)
    pollers = [asyncio.create_task(lb.poll(p)) for p in backends]
    server = await asyncio.start_server(lb.handle, HOST, port)
    say("listening", port)
    async with server:
        await server.serve_forever()
    for task in pollers:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), [int(p) for p in sys.argv[2:]]))
