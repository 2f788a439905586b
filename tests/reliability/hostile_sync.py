"""Sync-protocol fuzz sessions: mutated messages, raw text and binary frames, huge frames.

Each session ends with a sentinel mutation, answered after every earlier one. A mutation
answered with a failure must leave no dedupe record and no write, and a session with no
successful mutation must leave every table as it was.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tests.reliability.fuzz import (
    AUTH_HEADERS,
    dumps,
    mutate,
)
from tests.reliability.hostile import Fingerprint, Report, changes
from tests.support.ws import SyncClient

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
            sid = msg.get("sessionId")
            if msg.get("type") == "Connect" and isinstance(sid, str) and sid.isprintable():
                played.session_ids.add(sid)  # others are refused (app/sync/socket.py)
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
    before = await fp.take()
    for case in report.within(cases, budget_s):
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
            report.problem(case.label, f"nothing accepted but wrote {changes(before, after)}")
        before = after
    return report
