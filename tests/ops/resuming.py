"""A scripted sync client that survives its server going away, as the official clients do.

On a close it reconnects (to the balancer), sends Connect with the same session id and
the next connection count, resubscribes, and resends its unanswered mutation with the
same request id; the server answers a mutation it already ran from its dedupe table.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.support.ws import SyncClient

RECONNECT_WITHIN_S = 10.0


@dataclass
class Ledger:
    """What one client did: tokens acknowledged, closes seen, errors, counts observed."""

    done: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    resent: int = 0
    last_count: Any = None


class ResumingClient:
    """Mutations with unique tokens over one logical session, across reconnects."""

    def __init__(self, name: str, first_url: str, reconnect_url: str) -> None:
        self.name = name
        self.first_url = first_url
        self.reconnect_url = reconnect_url
        self.ledger = Ledger()
        self.session_id = ""
        self.connections = 0
        self.conn: SyncClient | None = None
        self.qid = 0

    async def _connect(self, url: str) -> None:
        c = await SyncClient.open(url, connect_msg=False)
        if self.session_id:
            c.session_id = self.session_id
        self.session_id = c.session_id
        reason = "InitialConnect" if self.connections == 0 else "closed with code 1012"
        await c.connect(self.connections, reason, int(time.time() * 1000))
        self.connections += 1
        self.qid = await c.add("ledger:count_for", {"client": self.name})
        await c.wait_query_set()
        self.conn = c
        self.ledger.urls.append(url)

    async def _reconnect(self) -> None:
        deadline = time.monotonic() + RECONNECT_WITHIN_S
        while True:
            try:
                await self._connect(self.reconnect_url)
                return
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def run(self, seconds: float) -> Ledger:
        """Record tokens for `seconds`; then wait until the subscription counts them all."""
        await self._connect(self.first_url)
        until = time.monotonic() + seconds
        rid = 0
        while time.monotonic() < until:
            token = f"{self.name}-{rid}"
            await self._mutate(rid, token)
            rid += 1
        await self._settle()
        return self.ledger

    async def _mutate(self, rid: int, token: str) -> None:
        args = {"token": token, "client": self.name}
        while True:
            assert self.conn is not None
            try:
                response = await self.conn.mutation("ledger:record", args, request_id=rid)
            except (ConnectionClosed, TimeoutError) as exc:
                self.ledger.closes.append(_close_code(exc))
                await self._reconnect()
                self.ledger.resent += 1
                continue
            if response["success"]:
                self.ledger.done.append(token)
            else:
                self.ledger.errors.append(f"{token}: {response['result']}")
            return

    async def _settle(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.conn is not None
            try:
                self.ledger.last_count = self.conn.value(self.qid)
                if self.ledger.last_count == len(self.ledger.done):
                    break
                await self.conn.recv(timeout=1)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                self.ledger.closes.append(_close_code(exc))
                await self._reconnect()
        assert self.conn is not None
        await self.conn.close()


def _close_code(exc: BaseException) -> int | None:
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
        return int(exc.rcvd.code)
    return None
