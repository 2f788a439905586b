"""HTTP fuzz cases: valid calls of the kitchen app, mutated, and how each answer is checked.

A case must get a status below 500 and a JSON answer (4xx as `{"code", "message"}`);
a case the server did not run successfully must leave every table as it was.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

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
from tests.reliability.hostile import Fingerprint, Report, changes

WRITERS = ("/api/mutation", "/api/action", "/api/function", "/api/run/")


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
    before = await fp.take()
    for case in report.within(cases, budget_s):
        t0 = time.monotonic()
        try:
            r = await client.request(case.method, case.url, headers=case.headers,
                                     content=case.content)  # fmt: skip
        except httpx.HTTPError as exc:
            report.problem(
                case.label, f"no answer: {type(exc).__name__}: {exc} for {case.describe()}"
            )
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
            report.problem(
                case.label,
                f"rejected ({r.status_code}) but wrote {changes(before, after)}: {r.text[:200]}",
            )
        before = after
    return report
