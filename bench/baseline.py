"""The hand-written baseline: FastAPI + asyncpg running exactly the engine's SQL.

One uvicorn worker (uvloop, httptools), an asyncpg pool of 16 with the engine's pool
settings (no reset query, jit off), orjson. It takes the same Convex-style bodies
(`POST /api/query|mutation {"path", "args", "format"}`) and answers in the same shape,
so one wrk script drives both servers.

The statements and transactions are the ones Convect issues for the demo functions:
reads are one statement without BEGIN (Convect's lazy read transaction); mutations run
`BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL lock_timeout = ...` (one round trip), are
retried on 40001/40P01/55P03 with the engine's jittered backoff, and write the
`_convect_commits` row the engine writes. Routes under `/plain` leave that commit-log
row out, which shows what the commit log itself costs.

Run: `DATABASE_URL=... uvicorn bench.baseline:app --loop uvloop --http httptools`.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

from app.db.ids import new_id

POOL_SIZE = 16
ATTEMPTS = 16
GET_SQL = 'SELECT doc FROM docs."{table}" WHERE id = $1'
NEWEST_SQL = (
    'SELECT doc FROM docs."messages" WHERE "k:author" = convect_sort_key($1::jsonb) '
    'ORDER BY "k:author" DESC NULLS LAST, creation_time DESC, id DESC LIMIT $2'
)
INSERT_SQL = 'INSERT INTO docs."messages" (id, creation_time, doc) VALUES ($1, $2, $3::jsonb)'
UPDATE_SQL = 'UPDATE docs."accounts" SET doc = $2::jsonb WHERE id = $1'
COMMIT_LOG_SQL = (
    "INSERT INTO _convect_commits (ts, writes) VALUES (nextval('_convect_ts'), $1::jsonb) "
    "RETURNING ts"
)
RETRYABLE = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock timeout
LOCK_TIMEOUT_MS = 30  # row-lock wait of all but the last two attempts (as the engine)
PATIENT_ATTEMPTS = 2

pool: asyncpg.Pool


class Refused(Exception):
    """A function-level error (answered with HTTP 200 and `status: error`)."""


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Transactions are always closed before release (as in app/db/pool.py)."""


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Open the pool for the life of the server."""
    global pool
    created = await asyncpg.create_pool(
        os.environ["DATABASE_URL"],
        min_size=2,
        max_size=POOL_SIZE,
        reset=_no_reset,
        server_settings={"application_name": "baseline", "jit": "off"},
        command_timeout=60,
    )
    assert created is not None
    pool = created
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


def _ok(value: Any) -> Response:
    body = {"status": "success", "value": value, "logLines": []}
    return Response(orjson.dumps(body), media_type="application/json")


def _error(message: str) -> Response:
    body = {"status": "error", "errorMessage": message, "logLines": []}
    return Response(orjson.dumps(body), media_type="application/json")


def _args(body: Any) -> tuple[str, dict[str, Any]]:
    path = body.get("path") if isinstance(body, dict) else None
    args = body.get("args", {}) if isinstance(body, dict) else None
    if isinstance(args, list) and len(args) == 1:
        args = args[0]
    if not isinstance(path, str) or not isinstance(args, dict):
        raise Refused("bad request body")
    return path, args


def _str(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str):
        raise Refused(f"{name} must be a string")
    return value


# ------------------------------------------------------------------ queries


async def get_message(args: dict[str, Any], commit_log: bool) -> Any:
    """messages:get — one statement, no transaction."""
    row = await pool.fetchrow(GET_SQL.format(table="messages"), _str(args, "id"))
    return orjson.loads(row["doc"]) if row is not None else None


async def newest_by_author(args: dict[str, Any], commit_log: bool) -> Any:
    """messages:newest_by_author — one statement on the expression index."""
    author = orjson.dumps(_str(args, "author")).decode()
    rows = await pool.fetch(NEWEST_SQL, author, int(args.get("count", 10)))
    return [orjson.loads(r["doc"]) for r in rows]


# ------------------------------------------------------------------ mutations


async def _serializable(
    work: Callable[[asyncpg.Connection], Awaitable[list[list[Any]]]], commit_log: bool
) -> Any:
    """Run `work` SERIALIZABLE (plus the commit-log row), retrying like the engine."""
    last: BaseException | None = None
    for attempt in range(ATTEMPTS):
        if attempt:
            await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.25)))
        lock_timeout = 0 if attempt >= ATTEMPTS - PATIENT_ATTEMPTS else LOCK_TIMEOUT_MS
        async with pool.acquire() as conn:
            await conn.execute(
                f"BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL lock_timeout = {lock_timeout}"
            )
            try:
                writes = await work(conn)
                if commit_log:
                    await conn.fetchval(COMMIT_LOG_SQL, orjson.dumps(writes).decode())
            except BaseException as exc:
                await conn.execute("ROLLBACK")
                if isinstance(exc, asyncpg.PostgresError) and exc.sqlstate in RETRYABLE:
                    last = exc
                    continue
                raise
            try:
                await conn.execute("COMMIT")
            except asyncpg.PostgresError as exc:
                if exc.sqlstate in RETRYABLE:
                    last = exc
                    continue
                raise
            return None
    raise Refused(f"gave up after {ATTEMPTS} attempts: {last}")


_last_time = 0.0


def _creation_time() -> float:
    global _last_time
    now = time.time() * 1000.0
    if now <= _last_time:
        now = _last_time + 0.001
    _last_time = now
    return now


async def create_message(args: dict[str, Any], commit_log: bool) -> Any:
    """messages:create — INSERT (and commit-log row) in a SERIALIZABLE transaction."""
    author, body = _str(args, "author"), _str(args, "body")
    doc_id = new_id("messages")
    doc = {"author": author, "body": body, "_id": doc_id, "_creationTime": _creation_time()}

    async def work(conn: asyncpg.Connection) -> list[list[Any]]:
        await conn.execute(INSERT_SQL, doc_id, doc["_creationTime"], orjson.dumps(doc).decode())
        tracked = {"_id": doc_id, "_creationTime": doc["_creationTime"], "author": author}
        return [["messages", doc_id, None, tracked]]

    await _serializable(work, commit_log)
    return doc_id


def _tracked(doc: dict[str, Any]) -> dict[str, Any]:
    return {"_id": doc["_id"], "_creationTime": doc["_creationTime"], "owner": doc["owner"]}


async def transfer(args: dict[str, Any], commit_log: bool) -> Any:
    """accounts:transfer — two reads, two updates (and commit-log row), SERIALIZABLE."""
    from_id, to_id = _str(args, "fromId"), _str(args, "toId")
    amount = args.get("amount")
    if not isinstance(amount, int | float) or amount <= 0:
        raise Refused("amount must be a positive number")

    async def work(conn: asyncpg.Connection) -> list[list[Any]]:
        src_row = await conn.fetchrow(GET_SQL.format(table="accounts"), from_id)
        dst_row = await conn.fetchrow(GET_SQL.format(table="accounts"), to_id)
        if src_row is None or dst_row is None:
            raise Refused("no such account")
        src, dst = orjson.loads(src_row["doc"]), orjson.loads(dst_row["doc"])
        if src["balance"] < amount:
            raise Refused("insufficient funds")
        new_src = {**src, "balance": src["balance"] - amount}
        new_dst = {**dst, "balance": dst["balance"] + amount}
        await conn.execute(UPDATE_SQL, from_id, orjson.dumps(new_src).decode())
        await conn.execute(UPDATE_SQL, to_id, orjson.dumps(new_dst).decode())
        return [
            ["accounts", from_id, _tracked(src), _tracked(new_src)],
            ["accounts", to_id, _tracked(dst), _tracked(new_dst)],
        ]

    return await _serializable(work, commit_log)


Handler = Callable[[dict[str, Any], bool], Awaitable[Any]]
QUERIES: dict[str, Handler] = {
    "messages:get": get_message,
    "messages:newest_by_author": newest_by_author,
}
MUTATIONS: dict[str, Handler] = {
    "messages:create": create_message,
    "accounts:transfer": transfer,
}


async def _dispatch(request: Request, table: dict[str, Handler], commit_log: bool) -> Response:
    try:
        path, args = _args(orjson.loads(await request.body()))
        handler = table.get(path)
        if handler is None:
            raise Refused(f"Could not find public function for '{path}'")
        return _ok(await handler(args, commit_log))
    except Refused as exc:
        return _error(str(exc))
    except orjson.JSONDecodeError:
        return Response(b'{"code":"BadJsonBody"}', status_code=400)


@app.post("/api/query")
async def query(request: Request) -> Response:
    """Convex-style query endpoint."""
    return await _dispatch(request, QUERIES, True)


@app.post("/api/mutation")
async def mutation(request: Request) -> Response:
    """Convex-style mutation endpoint (commit-log row written, as the engine does)."""
    return await _dispatch(request, MUTATIONS, True)


@app.post("/plain/api/query")
async def plain_query(request: Request) -> Response:
    """The same queries (they write no commit-log row either way)."""
    return await _dispatch(request, QUERIES, True)


@app.post("/plain/api/mutation")
async def plain_mutation(request: Request) -> Response:
    """The same mutations without the commit-log row."""
    return await _dispatch(request, MUTATIONS, False)


@app.get("/healthz")
async def healthz() -> Response:
    """Liveness for the bench driver."""
    return Response(b'{"status":"ok"}', media_type="application/json")
