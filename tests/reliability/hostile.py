"""Run fuzz cases against a server: HTTP requests and sync sessions, each one checked.

Every case must get an answer below 500 (or, on a socket, an answer or a close), and a
case the server rejected must leave the database exactly as it was: a fingerprint of
every table's row count (documents, catalog, commit log, dedupe records, scheduled
functions, files) is taken before and after. Accepted calls may write; the fingerprint
is then taken afresh.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import orjson
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tests.reliability.fuzz import (
    AUTH_HEADERS,
    CONTENT_TYPES,
    INJECTIONS,
    corrupt,
    deep_text,
    dumps,
    hostile_scalar,
    hostile_value,
    mutate,
)
from tests.support.ws import SyncClient

WRITERS = ("/api/mutation", "/api/action", "/api/function", "/api/run/")


class Fingerprint:
    """Row counts of every table of a database, through one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, url: str) -> Fingerprint:
        """Connect."""
        return cls(await asyncpg.connect(url))

    async def take(self) -> dict[str, int]:
        """{schema.table: rows} for the app's and the system's tables."""
        tables = await self.conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname IN ('docs', 'public') AND tablename <> '_convect_workers'"
        )
        parts = [
            f"SELECT '{r['schemaname']}.{r['tablename']}' AS t, count(*) AS n "
            f'FROM "{r["schemaname"]}"."{r["tablename"]}"'
            for r in tables
        ]
        rows = await self.conn.fetch(" UNION ALL ".join(parts))
        return {r["t"]: r["n"] for r in rows}

    async def close(self) -> None:
        """Disconnect."""
        await self.conn.close()


@dataclass
class Report:
    """What a fuzz run did and found."""

    cases: int = 0
    statuses: Counter[Any] = field(default_factory=Counter)
    accepted: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)

    def timed(self, label: str, seconds: float) -> None:
        """Keep the five slowest cases."""
        self.slowest = sorted([*self.slowest, (round(seconds, 3), label)], reverse=True)[:5]

    def problem(self, label: str, detail: str) -> None:
        """Record a broken expectation (the test fails on any)."""
        self.problems.append(f"{label}: {detail[:600]}")


# ----------------------------------------------------------------- HTTP


def http_bases(doc_id: str) -> list[tuple[str, Any]]:
    """Valid calls of the kitchen app (tests/apps/kitchen) to start mutations from."""
    return [
        ("/api/query", {"path": "core_db:select", "format": "json", "args": {
            "table": "core_things", "index": "by_n", "range": [["gte", "n", 0]],
            "order": "desc", "mode": "take", "n": 5}}),
        ("/api/query", {"path": "core_db:select", "args": [{"table": "core_things", "filter": [
            "and", ["eq", {"field": "a"}, 1], ["lt", {"field": "_creationTime"}, 1e15]]}]}),
        ("/api/query", {"path": "core_db:get", "args": {"id": doc_id}}),
        ("/api/query", {"path": "core_tx:echo", "args": {"value": {"a": [1, "x", None]}}}),
        ("/api/mutation", {"path": "core_db:insert", "format": "convex_encoded_json",
                           "args": [{"table": "core_things", "doc": {"a": 1, "s": "x"}}]}),
        ("/api/mutation", {"path": "core_db:insert_field",
                           "args": {"table": "core_things", "field": "f", "value": 1}}),
        ("/api/mutation", {"path": "core_db:patch", "args": {"id": doc_id, "fields": {"a": 2}}}),
        ("/api/mutation", {"path": "core_db:insert_many",
                           "args": {"table": "core_events", "docs": [{"event": "e"}]}}),
        ("/api/mutation", {"path": "core_tx:set_n", "args": {"id": doc_id, "n": 1}}),
        ("/api/mutation", {"path": "sched_funcs:schedule", "args": {
            "delay": 600_000, "target": "sched_funcs:bump", "args": {"name": "f"}}}),
        ("/api/action", {"path": "core_tx:noisy_action", "args": {"tag": "t"}}),
        ("/api/function", {"path": "core_db:insert",
                           "args": {"table": "core_things", "doc": {"a": 1}}}),
        ("/api/run/core_db/insert", {"args": {"table": "core_things", "doc": {"a": 1}},
                                     "format": "json"}),
        ("/api/run/core_db/select", {"args": {"table": "core_things"}}),
        ("/api/run/rest_types/bump", {"args": {"count": {"$integer": "AQAAAAAAAAA="}}}),
        ("/api/query_ts", {}),
    ]  # fmt: skip


@dataclass
class HttpCase:
    """One request."""

    label: str
    method: str
    url: str
    headers: dict[str, str]
    content: Any

    def describe(self) -> str:
        """A short text of the request (for failure messages)."""
        body = self.content if isinstance(self.content, bytes) else b"<stream>"
        return f"{self.method} {self.url} {self.headers} {body[:200]!r}"


async def _chunks(size: int) -> Any:
    yield b'{"path": "core_db:insert", "args": {"table": "core_things", "doc": {"a": "'
    for _ in range(size // (1024 * 1024)):
        yield b"x" * (1024 * 1024)
    yield b'"}}}'


def http_case(rng: random.Random, bases: list[tuple[str, Any]], index: int) -> HttpCase:
    """A valid call, mutated one to three ways."""
    url, body = rng.choice(bases)
    method = "POST"
    headers = {"content-type": "application/json"}
    content: Any = None
    kinds = rng.sample(
        ["value", "value", "value", "path", "bytes", "header", "auth", "method", "raw", "shape"],
        k=rng.randint(1, 3),
    )
    if rng.random() < 0.015:
        kinds = ["huge"]
    for kind in kinds:
        if kind == "value":
            body = mutate(rng, body)
        elif kind == "path" and url.startswith("/api/run/"):
            module, name = (
                quote(str(hostile_scalar(rng)).encode("utf-8", "surrogatepass"), safe="")[:5000]
                for _ in range(2)
            )
            url = f"/api/run/{module or 'core_db'}/{name or 'insert'}"
        elif kind == "path" and isinstance(body, dict):
            body = {**body, "path": rng.choice([*INJECTIONS, hostile_scalar(rng)])}
        elif kind == "shape":
            body = rng.choice(
                [[body], None, "x", 5, {"args": {}}, {"path": "core_db:insert", "args": [{}, {}]},
                 {**body, "extra": hostile_value(rng)} if isinstance(body, dict) else body,
                 {**body, "format": hostile_scalar(rng)} if isinstance(body, dict) else body]
            )  # fmt: skip
        elif kind == "header":
            ctype = rng.choice(CONTENT_TYPES)
            if ctype is None:
                headers.pop("content-type", None)
            else:
                headers["content-type"] = ctype
        elif kind == "auth":
            auth = rng.choice(AUTH_HEADERS)
            if auth is not None:
                headers["authorization"] = auth
        elif kind == "method":
            method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
        elif kind == "raw" and rng.random() < 0.3:
            content = deep_text(rng)
        elif kind == "raw":
            content = rng.randbytes(rng.choice([0, 1, 16, 1000, 100_000]))
        elif kind == "bytes":
            content = corrupt(rng, content if content is not None else dumps(rng, body))
        elif kind == "huge":
            url = rng.choice(["/api/mutation", "/api/run/core_db/insert"])
            content = _chunks(9 * 1024 * 1024) if rng.random() < 0.5 else dumps(
                rng, {"path": "core_db:insert", "args": {"table": "core_things",
                                                         "doc": {"a": "x" * 9_000_000}}})  # fmt: skip
    if content is None:
        content = dumps(rng, body)
    return HttpCase(f"http#{index} {'+'.join(kinds)}", method, url, headers, content)


def _accepted(case: HttpCase, r: httpx.Response) -> bool:
    """True when the call ran a function successfully (so it may have written)."""
    if r.status_code != 200 or not case.url.startswith(WRITERS):
        return False
    try:
        return bool(r.json().get("status") == "success")
    except ValueError:
        return False


def _check_shape(case: HttpCase, r: httpx.Response, report: Report) -> None:
    """API listener answers are JSON; 4xx ones are `{"code", "message"}`."""
    if case.method == "HEAD" or r.status_code in (204, 304):
        return
    try:
        body = r.json()
    except ValueError:
        report.problem(case.label, f"{r.status_code} not JSON: {r.text[:200]!r}")
        return
    if r.status_code >= 400 and not (isinstance(body, dict) and {"code", "message"} <= set(body)):
        report.problem(case.label, f"{r.status_code} body {body!r}")


async def run_http(
    client: httpx.AsyncClient, fp: Fingerprint, cases: list[HttpCase], budget_s: float
) -> Report:
    """Send each case; check its status, its body's shape, and that a rejection wrote nothing."""
    report = Report()
    started = time.monotonic()
    before = await fp.take()
    for case in cases:
        if time.monotonic() - started > budget_s:
            break
        report.cases += 1
        t0 = time.monotonic()
        try:
            r = await client.request(case.method, case.url, headers=case.headers,
                                     content=case.content)  # fmt: skip
        except httpx.HTTPError as exc:
            report.problem(case.label, f"no answer: {type(exc).__name__}: {exc} for {case.describe()}")
            continue
        report.timed(case.label, time.monotonic() - t0)
        report.statuses[r.status_code] += 1
        if r.status_code >= 500:
            report.problem(case.label, f"{r.status_code} {r.text[:300]} for {case.describe()}")
        _check_shape(case, r, report)
        after = await fp.take()
        if _accepted(case, r):
            report.accepted += 1
        elif after != before:
            changed = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
            report.problem(case.label, f"rejected ({r.status_code}) but wrote {changed}: {r.text[:200]}")
        before = after
    report.seconds = time.monotonic() - started
    return report


# ----------------------------------------------------------------- sync protocol

SENTINEL = 2**40  # a request id no fuzz message uses
SYNC_PATHS = ["/api/1.48.0/sync", "/api/sync", "/api/0.0.1/sync", "/api/999.999.999/sync",
              "/api/x'--/sync", "/api/%00/sync", "/api/1.48.0/sync?v=../../", "/api/..%2F/sync"]  # fmt: skip


def _message(rng: random.Random, doc_id: str, qs: int, rid: int) -> dict[str, Any]:
    kind = rng.choice(["modify", "modify", "mutation", "mutation", "action", "auth", "event",
                       "connect", "remove"])  # fmt: skip
    if kind == "modify":
        path, args = rng.choice([("core_db:select", {"table": "core_things"}),
                                 ("core_db:get", {"id": doc_id}),
                                 ("core_tx:echo", {"value": [1, {"a": "b"}]}),
                                 ("core_tx:record", {"event": "x", "fail": "no"})])  # fmt: skip
        return {"type": "ModifyQuerySet", "baseVersion": qs, "newVersion": qs + 1,
                "modifications": [{"type": "Add", "queryId": qs, "udfPath": path,
                                   "args": [args]}]}  # fmt: skip
    if kind == "remove":
        return {"type": "ModifyQuerySet", "baseVersion": qs, "newVersion": qs + 1,
                "modifications": [{"type": "Remove", "queryId": max(qs - 1, 0)}]}  # fmt: skip
    if kind == "mutation":
        path, args = rng.choice([("core_db:insert", {"table": "core_things", "doc": {"a": 1}}),
                                 ("core_db:patch", {"id": doc_id, "fields": {"a": 2}}),
                                 ("core_tx:set_n", {"id": doc_id, "n": 3}),
                                 ("core_tx:record", {"event": "x", "fail": "no"})])  # fmt: skip
        return {"type": "Mutation", "requestId": rid, "udfPath": path, "args": [args]}
    if kind == "action":
        return {"type": "Action", "requestId": rid, "udfPath": "core_tx:noisy_action",
                "args": [{"tag": "t"}]}  # fmt: skip
    if kind == "auth":
        return {"type": "Authenticate", "tokenType": rng.choice(["User", "Admin", "None", "Wizard"]),
                "value": rng.choice(AUTH_HEADERS) or "x", "baseVersion": 0}  # fmt: skip
    if kind == "event":
        return {"type": "Event", "eventType": "x", "event": {}}
    return {"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0,
            "lastCloseReason": "InitialConnect", "clientTs": 0}  # fmt: skip


@dataclass
class SyncCase:
    """One session: the URL path and the frames to send (str or bytes)."""

    label: str
    path: str
    frames: list[Any]


def sync_case(rng: random.Random, doc_id: str, index: int) -> SyncCase:
    """A session of one to five frames, most of them mutated."""
    path = "/api/1.48.0/sync" if rng.random() < 0.9 else rng.choice(SYNC_PATHS)
    frames: list[Any] = []
    if rng.random() < 0.85:
        connect = {"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0,
                   "lastCloseReason": "InitialConnect", "clientTs": 0}  # fmt: skip
        connect = mutate(rng, connect) if rng.random() < 0.15 else connect
        frames.append(dumps(rng, connect).decode("utf-8", errors="replace"))
    kinds = []
    for i in range(rng.randint(1, 4)):
        msg = _message(rng, doc_id, i, i)
        pick = rng.random()
        if pick < 0.6:
            msg = mutate(rng, msg)
            kinds.append("mutated")
        elif pick < 0.7:
            frames.append(rng.choice(["not json", "[1, 2]", "null", "{", '{"type": null}', ""]))
            kinds.append("text")
            continue
        elif pick < 0.75:
            frames.append(rng.randbytes(rng.choice([1, 100, 5000])))
            kinds.append("binary")
            continue
        elif pick < 0.78:
            size = rng.choice([5_000_000, 12_000_000, 17_000_000])
            msg = {"type": "Mutation", "requestId": i, "udfPath": "core_db:insert",
                   "args": [{"table": "core_things", "doc": {"a": "x" * size}}]}  # fmt: skip
            kinds.append(f"huge{size // 1_000_000}M")
        else:
            kinds.append("valid")
        frames.append(dumps(rng, msg).decode("utf-8", errors="replace"))
    return SyncCase(f"sync#{index} {path} {'+'.join(kinds)}", path, frames)


@dataclass
class Played:
    """What a session got: answers by request id, whether the server closed it."""

    session_ids: set[str] = field(default_factory=set)  # every Connect's (the server may
    anonymous: bool = True  # have run a mutation under any); False once one was valid
    sent: list[Any] = field(default_factory=list)  # request ids of Mutation frames
    answers: dict[Any, bool] = field(default_factory=dict)  # request id -> success
    closed: bool = False

    @property
    def unanswered(self) -> int:
        """Mutation frames sent without an answer (the server may have closed first)."""
        return sum(1 for rid in self.sent if rid not in self.answers)


def _parse(frame: Any) -> Any:
    """A text frame as the server reads it (orjson: lone surrogates are refused)."""
    try:
        return orjson.loads(frame) if isinstance(frame, str) else None
    except orjson.JSONDecodeError:
        return None


async def _play(url: str, case: SyncCase) -> Played:
    """Send the frames and a sentinel mutation (answered after every earlier one)."""
    played = Played()
    try:
        c = await SyncClient.open(url, case.path, connect_msg=False)
    except (InvalidStatus, InvalidHandshake):
        played.closed = True
        return played
    try:
        for frame in case.frames:
            msg = _parse(frame)
            msg = msg if isinstance(msg, dict) else {}
            if msg.get("type") == "Connect" and isinstance(msg.get("sessionId"), str):
                played.session_ids.add(msg["sessionId"])
                played.anonymous = False
            rid = msg.get("requestId") if isinstance(msg, dict) else None
            if msg.get("type") == "Mutation" and type(rid) is int:  # others are refused
                played.sent.append(rid)
            await c.conn.send(frame)
        await c.send({"type": "Mutation", "requestId": SENTINEL, "udfPath": "rest_types:refuse",
                      "args": [{"reason": "sentinel"}]})  # fmt: skip
        while True:
            msg = await c.recv(timeout=30)
            if msg["type"] == "MutationResponse":
                if msg["requestId"] == SENTINEL:
                    return played
                played.answers[msg["requestId"]] = bool(msg["success"])
    except ConnectionClosed:
        played.closed = True
    finally:
        await c.close()
    return played


async def _settled(fp: Fingerprint) -> dict[str, int]:
    """The fingerprint once two takes 50 ms apart agree (a cut-off mutation has ended)."""
    last = await fp.take()
    for _ in range(20):
        await asyncio.sleep(0.05)
        now = await fp.take()
        if now == last:
            return now
        last = now
    return last


async def run_sync(url: str, fp: Fingerprint, cases: list[SyncCase], budget_s: float) -> Report:
    """Play each session. A mutation answered with a failure left no record and no write;
    a session with no successful mutation wrote nothing at all."""
    report = Report()
    started = time.monotonic()
    before = await fp.take()
    for case in cases:
        if time.monotonic() - started > budget_s:
            break
        report.cases += 1
        t0 = time.monotonic()
        try:
            played = await _play(url, case)
        except (TimeoutError, OSError) as exc:
            report.problem(case.label, f"no answer: {type(exc).__name__}: {exc}")
            continue
        report.timed(case.label, time.monotonic() - t0)
        report.statuses["closed" if played.closed else "answered"] += 1
        after = await (_settled(fp) if played.unanswered else fp.take())
        committed: set[Any] = set()
        if played.session_ids:
            rows = await fp.conn.fetch(
                "SELECT request_id FROM _convect_mutation_requests WHERE session_id = ANY($1)",
                list(played.session_ids),
            )
            committed = {r["request_id"] for r in rows}
        refused = {rid for rid, ok in played.answers.items() if not ok}
        if refused & committed:
            report.problem(case.label, f"mutations {refused & committed} failed but committed")
        anonymous = played.anonymous and played.unanswered
        if any(played.answers.values()) or committed or anonymous:
            report.accepted += 1
        elif after != before:
            changed = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
            report.problem(case.label, f"nothing accepted but wrote {changed}")
        before = after
    report.seconds = time.monotonic() - started
    return report
