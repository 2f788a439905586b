"""A bank under load: transfers from HTTP, socket and PyPI clients, watched by subscribers.

The demo's `accounts` module (functions/accounts.py) holds the money. Every client keeps
a ledger of what the server acknowledged; observers subscribe to `accounts:total` and to
every account's balance on one socket and check each Transition they receive: the total
never moves, and the balances they hold after it (one snapshot) add up to the total.
"""

from __future__ import annotations

import asyncio
import random
import re
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


def classify(body: dict[str, Any], kind: str, args: dict[str, Any], ledger: Ledger, t0: float) -> None:
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


# ----------------------------------------------------------------- clients


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
        await c.send(
            {"type": "Connect", "sessionId": self.session_id, "connectionCount": self.connections,
             "lastCloseReason": reason, "clientTs": int(time.time() * 1000)}
        )  # fmt: skip
        self.connections += 1
        self.qids = {}
        for path, args in self.subscribe:
            self.qids[await c.add(path, args)] = (path, args)
        if self.subscribe:
            await c.wait_query_set(timeout=30)
        self.conn = c
        self.history.append(c)
        return c

    async def mutate(self, path: str, args: dict[str, Any], ledger: Ledger | None = None) -> dict[str, Any]:
        """Run a mutation once, across reconnects; return its MutationResponse."""
        rid = self.next_request
        self.next_request += 1
        resent = False
        while True:
            c = self.conn or await self.connect()
            try:
                await c.send({"type": "Mutation", "requestId": rid, "udfPath": path, "args": [args]})
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


# ----------------------------------------------------------------- observers


@dataclass
class Violation:
    """A Transition that broke the invariant."""

    where: str
    detail: str


class Observer:
    """Subscribes to the total and to every balance; checks each Transition it receives."""

    def __init__(self, url: str, accounts: list[str], name: str) -> None:
        specs = [("accounts:total", {})] + [("accounts:get", {"id": a}) for a in accounts]
        self.socket = SocketClient(url, specs)
        self.accounts = accounts
        self.name = name
        self.violations: list[Violation] = []
        self.transitions = 0
        self.totals_seen = 0
        self.reconnects = 0

    async def start(self) -> None:
        """Connect and check the first Transition."""
        await self.socket.connect()
        self.check_all()

    def check_all(self) -> None:
        """Check what the current connection holds after its latest Transition."""
        c = self.socket.conn
        assert c is not None
        by_path: dict[str, Any] = {}
        held: dict[str, float] = {}
        for qid, (path, args) in self.socket.qids.items():
            mod = c.results.get(qid)
            if mod is None:
                continue
            if mod["type"] != "QueryUpdated":
                self.violations.append(Violation(self.name, f"{path} failed: {mod}"))
                continue
            if path == "accounts:total":
                by_path[path] = mod["value"]
            elif mod["value"] is not None:
                held[args["id"]] = mod["value"]["balance"]
        if "accounts:total" in by_path and by_path["accounts:total"] != TOTAL:
            self.violations.append(
                Violation(self.name, f"total {by_path['accounts:total']} != {TOTAL}")
            )
        if len(held) == len(self.accounts) and sum(held.values()) != TOTAL:
            self.violations.append(
                Violation(self.name, f"balances in one transition add up to {sum(held.values())}")
            )

    def check_transition(self, msg: dict[str, Any]) -> None:
        """Check a Transition just applied to the connection's results."""
        self.transitions += 1
        total_qids = [q for q, (p, _) in self.socket.qids.items() if p == "accounts:total"]
        for mod in msg["modifications"]:
            if mod.get("queryId") in total_qids:
                self.totals_seen += 1
        self.check_all()

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and check Transitions until `stop`, reconnecting if the socket closes."""
        while not stop.is_set():
            c = self.socket.conn
            try:
                if c is None:
                    self.reconnects += 1
                    await self.socket.connect()
                    self.check_all()
                    continue
                msg = await c.recv(timeout=0.2)
            except TimeoutError:
                continue
            except (ConnectionClosed, OSError):
                self.socket.conn = None
                continue
            if msg["type"] == "Transition":
                self.check_transition(msg)

    def holds(self) -> tuple[Any, dict[str, float]]:
        """The total and balances the observer currently holds."""
        c = self.socket.conn
        assert c is not None
        total: Any = None
        held: dict[str, float] = {}
        for qid, (path, args) in self.socket.qids.items():
            mod = c.results.get(qid)
            if mod is None or mod["type"] != "QueryUpdated":
                continue
            if path == "accounts:total":
                total = mod["value"]
            elif mod["value"] is not None:
                held[args["id"]] = mod["value"]["balance"]
        return total, held

    async def converge(self, final: dict[str, float], timeout: float = 15) -> None:
        """Receive until the observer holds `final` balances and the total (or fail)."""
        deadline = time.monotonic() + timeout
        while self.holds() != (TOTAL, final):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{self.name} holds {self.holds()}, expected {final}"
            c = self.socket.conn
            if c is None:
                await self.socket.connect()
                continue
            try:
                msg = await c.recv(timeout=min(remaining, 0.5))
            except TimeoutError:
                continue
            if msg["type"] == "Transition":
                self.check_transition(msg)


def total_values(clients: list[SocketClient]) -> list[Any]:
    """Every `accounts:total` value pushed to these clients, in every connection they had."""
    values = []
    for sc in clients:
        for c in sc.history:
            qids = {q for q, (p, _) in sc.qids.items() if p == "accounts:total"}
            for t in c.transitions:
                for mod in t["modifications"]:
                    if mod.get("queryId") in qids and mod["type"] == "QueryUpdated":
                        values.append(mod["value"])
    return values


# ----------------------------------------------------------------- the load


@dataclass
class Mix:
    """How many clients of each kind."""

    http: int = 36
    sockets: int = 24
    pypi: int = 4
    observers: int = 4

    @property
    def writers(self) -> int:
        """Concurrent clients doing transfers."""
        return self.http + self.sockets + self.pypi


@dataclass
class Run:
    """A bank load in progress (or done): its clients, ledger and observers."""

    url: str
    accounts: list[str]
    mix: Mix
    ledger: Ledger = field(default_factory=Ledger)
    sockets: list[SocketClient] = field(default_factory=list)
    observers: list[Observer] = field(default_factory=list)
    started: float = 0.0
    duration: float = 0.0

    async def go(self, seconds: float, during: Any = None) -> None:
        """Run every client for `seconds` (and the coroutine `during`, if any, meanwhile)."""
        for i in range(self.mix.observers):
            obs = Observer(self.url, self.accounts, f"observer-{i}")
            await obs.start()
            self.observers.append(obs)
        for _ in range(self.mix.sockets):
            sc = SocketClient(self.url, [("accounts:total", {})])
            await sc.connect()
            self.sockets.append(sc)
        stop, thread_stop = asyncio.Event(), threading.Event()
        tasks = [asyncio.create_task(o.run(stop)) for o in self.observers]
        writers = [
            *(http_client(self.url, self.accounts, 1000 + i, stop, self.ledger)
              for i in range(self.mix.http)),
            *(sc.transfers(self.accounts, 2000 + i, stop, self.ledger)
              for i, sc in enumerate(self.sockets)),
            *(asyncio.to_thread(pypi_client, self.url, self.accounts, 3000 + i, thread_stop,
                                self.ledger) for i in range(self.mix.pypi)),
        ]  # fmt: skip
        self.started = time.monotonic()

        async def timer() -> None:
            await asyncio.sleep(seconds)
            stop.set()
            thread_stop.set()

        extra = [during] if during is not None else []
        await asyncio.gather(timer(), *writers, *extra)
        self.duration = time.monotonic() - self.started
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def verify(self, client: httpx.AsyncClient, failures: str = CONFLICT) -> dict[str, float]:
        """The invariants: money kept, every acknowledged transfer applied once, observers
        consistent in every Transition and at the final state. Returns the final balances.

        Error replies other than refusals must match `failures` (by default: a mutation
        that gave up after its retries under contention, as Convex's OCC does).
        """
        ledger = self.ledger
        assert ledger.unknown == [], ledger.unknown[:5]
        unexpected = [m for m in ledger.failed if not re.search(failures, m)]
        assert unexpected == [], unexpected[:5]
        final = await balances(client, self.accounts)
        assert sum(final.values()) == TOTAL
        assert await query(client, "accounts:total") == TOTAL
        assert final == ledger.expected(self.accounts), "acknowledged transfers != balances"
        assert all(b >= 0 for b in final.values())
        pushed = total_values(self.sockets)
        assert pushed and all(v == TOTAL for v in pushed), sorted(set(map(str, pushed)))[:5]
        for obs in self.observers:
            await obs.converge(final)
            assert obs.violations == [], obs.violations[:5]
        return final

    def summary(self) -> str:
        """One line of figures for the test output (and docs/reliability.md)."""
        ledger = self.ledger
        n = len(ledger.applied)
        pushed = sum(len(c.transitions) for sc in self.sockets for c in sc.history)
        seen = sum(o.transitions for o in self.observers)
        return (
            f"{self.mix.writers} writers ({self.mix.http} httpx, {self.mix.sockets} sockets, "
            f"{self.mix.pypi} PyPI) for {self.duration:.1f}s: {n} transfers applied "
            f"({n / max(self.duration, 1e-9):.0f}/s; {dict(ledger.by_client)}), "
            f"{ledger.refused} refused, {len(ledger.failed)} failed, {ledger.resent} resent; "
            f"{pushed} transitions to writers, {seen} checked by {len(self.observers)} observers"
        )

    async def close(self) -> None:
        """Close every socket."""
        for sc in [*self.sockets, *(o.socket for o in self.observers)]:
            try:
                await sc.close()
            except Exception:
                pass
