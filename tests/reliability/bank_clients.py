"""The bank's clients: transfers over HTTP (httpx), the sync protocol and the PyPI client.

The demo's `accounts` module (functions/accounts.py) holds the money. Every client
records in a shared ledger what the server answered: applied, refused, failed, or no
answer at all (outcome unknown).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.support.calls import mutation, query
from tests.support.ws import SyncClient

ACCOUNTS = 20
START = 1000
TOTAL = float(ACCOUNTS * START)
MAX_AMOUNT = 300
RECONNECT_WITHIN_S = 30.0
CONFLICT = r"ConflictError: Mutation accounts:transfer kept conflicting"


@dataclass
class Ledger:
    """What the clients were told: applied transfers, refusals, failures, unknown outcomes."""

    applied: list[tuple[str, str, int]] = field(default_factory=list)
    by_client: Counter[str] = field(default_factory=Counter)
    refused: int = 0  # INSUFFICIENT_FUNDS: a ConvexError, nothing applied
    failed: list[str] = field(default_factory=list)  # other error replies: nothing applied
    failed_at: list[float] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # no reply at all: outcome unknown
    slowest_failure_s: float = 0.0
    resent: int = 0  # socket mutations resent after a reconnect
    successes_at: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def success(self, kind: str, args: dict[str, Any]) -> None:
        """An acknowledged transfer."""
        with self.lock:
            self.applied.append((args["fromId"], args["toId"], args["amount"]))
            self.by_client[kind] += 1
            self.successes_at.append(time.monotonic())

    def refusal(self) -> None:
        """A transfer refused for insufficient funds."""
        with self.lock:
            self.refused += 1

    def failure(self, message: str, elapsed: float) -> None:
        """An error reply (not a ConvexError) after `elapsed` seconds."""
        now = time.monotonic()
        with self.lock:
            self.failed.append(message[:300])
            self.failed_at.append(now)
            self.slowest_failure_s = max(self.slowest_failure_s, elapsed)

    def expected(self, accounts: list[str]) -> dict[str, float]:
        """Balances if exactly the acknowledged transfers were applied, each once."""
        balances = dict.fromkeys(accounts, float(START))
        for src, dst, amount in self.applied:
            balances[src] -= amount
            balances[dst] += amount
        return balances


def classify(
    body: dict[str, Any], kind: str, args: dict[str, Any], ledger: Ledger, t0: float
) -> None:
    """Record one reply in Convex's `{"status", ...}` shape (HTTP) in the ledger."""
    if body.get("status") == "success":
        ledger.success(kind, args)
    elif (body.get("errorData") or {}).get("code") == "INSUFFICIENT_FUNDS":
        ledger.refusal()
    else:
        ledger.failure(str(body.get("errorMessage") or body), time.monotonic() - t0)


def random_transfer(rng: random.Random, accounts: list[str]) -> dict[str, Any]:
    """Arguments of one transfer between two different accounts."""
    src, dst = rng.sample(accounts, 2)
    return {"fromId": src, "toId": dst, "amount": rng.randint(1, MAX_AMOUNT)}


async def open_accounts(client: httpx.AsyncClient) -> list[str]:
    """Open the bank's accounts; return their ids."""
    return [
        await mutation(client, "accounts:open", {"owner": f"o{i}", "balance": START})
        for i in range(ACCOUNTS)
    ]


async def balances(client: httpx.AsyncClient, accounts: list[str]) -> dict[str, float]:
    """Every account's balance, read fresh."""
    return {a: (await query(client, "accounts:get", {"id": a}))["balance"] for a in accounts}


async def http_client(
    url: str, accounts: list[str], seed: int, stop: asyncio.Event, ledger: Ledger
) -> None:
    """Transfers over the Convex HTTP API (httpx) until `stop`."""
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while not stop.is_set():
            args = random_transfer(rng, accounts)
            t0 = time.monotonic()
            try:
                r = await client.post(
                    "/api/mutation",
                    json={"path": "accounts:transfer", "args": args, "format": "json"},
                )
            except httpx.TransportError as exc:
                ledger.unknown.append(f"http: {type(exc).__name__}: {exc}")
                continue
            if r.status_code != 200:
                ledger.failure(f"HTTP {r.status_code}: {r.text}", time.monotonic() - t0)
                continue
            classify(r.json(), "http", args, ledger, t0)


def pypi_client(
    url: str, accounts: list[str], seed: int, stop: threading.Event, ledger: Ledger
) -> None:
    """Transfers through the official PyPI `ConvexHttpClient` (blocking; run in a thread)."""
    import requests
    from convex import ConvexError
    from convex.http_client import ConvexExecutionError, ConvexHttpClient

    rng = random.Random(seed)
    client = ConvexHttpClient(url)
    while not stop.is_set():
        args = random_transfer(rng, accounts)
        t0 = time.monotonic()
        try:
            client.mutation("accounts:transfer", args)
        except ConvexError as exc:
            if isinstance(exc.data, dict) and exc.data.get("code") == "INSUFFICIENT_FUNDS":
                ledger.refusal()
            else:
                ledger.failure(f"ConvexError {exc.data!r}", time.monotonic() - t0)
            continue
        except ConvexExecutionError as exc:
            ledger.failure(str(exc), time.monotonic() - t0)
            continue
        except requests.RequestException as exc:
            ledger.unknown.append(f"pypi: {type(exc).__name__}: {exc}")
            continue
        ledger.success("pypi", args)


class SocketClient:
    """A sync-protocol client that resumes its session after a lost connection.

    Like the official clients: on a close it reconnects with the same session id and
    the next connection count, resubscribes, and resends its unanswered mutation with
    the same request id (the server answers a mutation it already ran from its record).
    """

    def __init__(self, url: str, subscribe: list[tuple[str, dict[str, Any]]]) -> None:
        self.url = url
        self.subscribe = subscribe
        self.session_id = str(uuid.uuid4())
        self.connections = 0
        self.conn: SyncClient | None = None
        self.history: list[SyncClient] = []  # every connection, for their transitions
        self.qids: dict[int, tuple[str, dict[str, Any]]] = {}
        self.next_request = 0

    async def connect(self) -> SyncClient:
        """Open a connection (a new one on each call), Connect, subscribe."""
        deadline = time.monotonic() + RECONNECT_WITHIN_S
        while True:
            try:
                c = await SyncClient.open(self.url, connect_msg=False)
                break
            except (OSError, InvalidHandshake, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        c.session_id = self.session_id
        reason = "InitialConnect" if self.connections == 0 else "closed with code 1006"
        await c.connect(self.connections, reason, int(time.time() * 1000))
        self.connections += 1
        self.qids = {}
        for path, args in self.subscribe:
            self.qids[await c.add(path, args)] = (path, args)
        if self.subscribe:
            await c.wait_query_set(timeout=30)
        self.conn = c
        self.history.append(c)
        return c

    async def mutate(
        self, path: str, args: dict[str, Any], ledger: Ledger | None = None
    ) -> dict[str, Any]:
        """Run a mutation once, across reconnects; return its MutationResponse."""
        rid = self.next_request
        self.next_request += 1
        resent = False
        while True:
            c = self.conn or await self.connect()
            try:
                await c.send(
                    {"type": "Mutation", "requestId": rid, "udfPath": path, "args": [args]}
                )
                while True:
                    msg = await c.recv(timeout=60)
                    if msg["type"] == "MutationResponse" and msg["requestId"] == rid:
                        return msg
            except (ConnectionClosed, OSError):
                self.conn = None
                if ledger is not None and not resent:
                    ledger.resent += 1
                resent = True

    async def transfers(
        self, accounts: list[str], seed: int, stop: asyncio.Event, ledger: Ledger
    ) -> None:
        """Transfers until `stop`."""
        rng = random.Random(seed)
        while not stop.is_set():
            args = random_transfer(rng, accounts)
            t0 = time.monotonic()
            r = await self.mutate("accounts:transfer", args, ledger)
            if r["success"]:
                ledger.success("socket", args)
            elif (r.get("errorData") or {}).get("code") == "INSUFFICIENT_FUNDS":
                ledger.refusal()
            else:
                ledger.failure(str(r.get("result")), time.monotonic() - t0)

    async def close(self) -> None:
        """Close the current connection."""
        if self.conn is not None:
            await self.conn.close()
