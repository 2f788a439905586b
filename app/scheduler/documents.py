"""Rows of `_scheduled_functions` and of the run queue: layout, state changes and SQL.

A scheduled function is a document like any other (`id`, `creation_time`, `doc`),
readable through `ctx.db.system`, with Convex's fields: `name` (function path), `args`
(`[args]`), `scheduledTime` (ms), `state` (`{"kind": ...}`, `"error"` when failed) and
`completedTime` once it ended. While it is pending or running it also has a row in
`_convect_scheduled_queue` (due time; the worker running an action). Both change in one
transaction; removing the queue row is the step that decides who ends a function, so a
second delivery, a cancel and a finishing run can never both win. Every document change
is recorded on the Tx so live queries see it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from app.db import ids
from app.db.transaction import Tx

TABLE = "_scheduled_functions"
TABLE_REF = 'docs."_scheduled_functions"'
QUEUE = "_convect_scheduled_queue"
PENDING = "pending"
IN_PROGRESS = "inProgress"
SUCCESS = "success"
FAILED = "failed"
CANCELED = "canceled"
TERMINAL = frozenset({SUCCESS, FAILED, CANCELED})
ANY_WORKER = "*"


def now_ms() -> float:
    """Milliseconds since the epoch."""
    return time.time() * 1000.0


def new_document(
    doc_id: str, path: str, encoded_args: Any, scheduled_ms: float, *, creation_time: float
) -> dict[str, Any]:
    """A pending row (wire-encoded, as stored); `creation_time` from the catalog's clock."""
    return {
        "_id": doc_id,
        "_creationTime": creation_time,
        "name": path,
        "args": [encoded_args],
        "scheduledTime": scheduled_ms,
        "state": {"kind": PENDING},
    }


def state_of(doc: dict[str, Any]) -> str:
    """The row's state kind."""
    state = doc.get("state")
    return str(state.get("kind")) if isinstance(state, dict) else ""


def with_state(doc: dict[str, Any], kind: str, error: str | None = None) -> dict[str, Any]:
    """A copy of `doc` in state `kind` (`completedTime` set when it ended)."""
    new = dict(doc)
    new["state"] = {"kind": kind} if error is None else {"kind": kind, "error": error}
    if kind in TERMINAL:
        new["completedTime"] = now_ms()
    return new


@dataclass(frozen=True)
class Pending:
    """A scheduled function as a worker reads it before running it."""

    doc: dict[str, Any]
    doc_tid: Any
    queue_tid: Any


_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def derived_id(*parts: str) -> str:
    """A valid `_scheduled_functions` id computed from `parts` (the same on every worker)."""
    body = hashlib.sha256("\x00".join(parts).encode()).digest()[:16]
    body += ids.table_number(TABLE).to_bytes(4, "big")
    a = b = 0
    for byte in body:  # the checksum app.db.ids puts after every id
        a = (a + byte) % 255
        b = (b + a) % 255
    raw = body + bytes((a, b))
    text = base64.b32encode(raw).decode().rstrip("=")
    return text.translate(str.maketrans(_STD, _CROCKFORD))


# ----------------------------------------------------------------- SQL


async def insert_if_absent(tx: Tx, doc: dict[str, Any]) -> bool:
    """Insert a pending function (a cron tick) in `tx`; False, changing nothing, if its id
    exists. Functions a mutation schedules go through `insert_later` instead."""
    row = await tx.fetchrow(
        f"INSERT INTO {TABLE_REF} (id, creation_time, doc) VALUES ($1, $2, $3::jsonb) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        doc["_id"],
        doc["_creationTime"],
        orjson.dumps(doc).decode(),
    )
    if row is None:
        return False
    await tx.execute(
        f"INSERT INTO {QUEUE} (id, due) VALUES ($1, $2)", doc["_id"], float(doc["scheduledTime"])
    )
    tx.record_write(TABLE, doc["_id"], None, doc)
    return True


class _InsertBatch:
    """Pending functions a mutation scheduled, inserted together (see `Tx.defer`)."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []

    def statements(self) -> list[tuple[str, list[Any]]]:
        docs = self.docs
        ids_ = [d["_id"] for d in docs]
        return [
            (
                f"INSERT INTO {TABLE_REF} (id, creation_time, doc) "
                "SELECT * FROM unnest($1::text[], $2::float8[], $3::jsonb[])",
                [
                    ids_,
                    [d["_creationTime"] for d in docs],
                    [orjson.dumps(d).decode() for d in docs],
                ],
            ),
            (
                f"INSERT INTO {QUEUE} (id, due) SELECT * FROM unnest($1::text[], $2::float8[])",
                [ids_, [float(d["scheduledTime"]) for d in docs]],
            ),
        ]

    standalone = True  # new rows only, nothing to settle

    def expected(self) -> list[int | None]:
        return [None, None]  # new rows: nothing another mutation could have changed

    async def settle(self, conn: asyncpg.Connection, changed: list[int]) -> None:
        pass  # new ids: every row is inserted (or the statement failed)


def insert_later(tx: Tx, doc: dict[str, Any]) -> None:
    """Insert a pending function in `tx` with the others it schedules, before its next
    statement or with its commit-log row (one statement for a mutation's whole batch)."""
    tx.defer("scheduled_functions", _InsertBatch).docs.append(doc)
    tx.record_write(TABLE, doc["_id"], None, doc)


class _StateChange:
    """A scheduled function's new document, written with the commit-log row."""

    def __init__(self, new: dict[str, Any], tid: Any) -> None:
        self.new = new
        self.tid = tid

    def statements(self) -> list[tuple[str, list[Any]]]:
        # A TID scan locks the one row, not an index page (see `dequeue`).
        sql = f"UPDATE {TABLE_REF} SET doc = $1::jsonb WHERE ctid = $2 AND id = $3"
        return [(sql, [orjson.dumps(self.new).decode(), self.tid, self.new["_id"]])]

    standalone = False  # an update, which may need a second statement (`settle`)

    def expected(self) -> list[int | None]:
        return [None]

    async def settle(self, conn: asyncpg.Connection, changed: list[int]) -> None:
        if not changed[0]:  # the row moved since its address was read: by id, then
            await conn.execute(_UPDATE_BY_ID, self.new["_id"], orjson.dumps(self.new).decode())


def write_later(tx: Tx, old: dict[str, Any], new: dict[str, Any], tid: Any) -> None:
    """`write` with the commit-log row (by address `tid`, read before the transaction)."""
    change = tx.defer(f"state:{new['_id']}", lambda: _StateChange(new, tid))
    change.new, change.tid = new, tid  # the latest change wins
    tx.record_write(TABLE, new["_id"], old, new)


async def read(tx: Tx, doc_id: str) -> dict[str, Any] | None:
    """The document of a scheduled function, read in `tx`."""
    row = await tx.fetchrow(f"SELECT doc FROM {TABLE_REF} WHERE id = $1", doc_id)
    return orjson.loads(row["doc"]) if row is not None else None


_UPDATE_BY_ID = f"UPDATE {TABLE_REF} SET doc = $2::jsonb WHERE id = $1"


async def write(tx: Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Store `new` over `old` in `tx`."""
    await tx.execute(_UPDATE_BY_ID, new["_id"], orjson.dumps(new).decode())
    tx.record_write(TABLE, new["_id"], old, new)


async def dequeue(tx: Tx, doc_id: str, worker: str | None, tid: Any = None) -> bool:
    """Remove the queue row of a pending function (`worker` None) or of one running on
    `worker` (`ANY_WORKER`: whoever runs it); False if there was none: not ours to end.

    With `tid` (the row's address, read before the transaction) the row is found by a TID
    scan: under SERIALIZABLE that takes a lock on the one row instead of on an index
    page, so concurrent runs and concurrent scheduling do not record conflicts with each
    other (PostgreSQL's table of them is small and runs out under load).
    """
    if tid is not None and worker is None:
        sql = f"DELETE FROM {QUEUE} WHERE ctid = $1 AND id = $2 AND worker IS NULL RETURNING id"
        if await tx.fetchrow(sql, tid, doc_id) is not None:
            return True
    if worker is None:
        sql = f"DELETE FROM {QUEUE} WHERE id = $1 AND worker IS NULL RETURNING id"
        row = await tx.fetchrow(sql, doc_id)
    elif worker == ANY_WORKER:
        row = await tx.fetchrow(f"DELETE FROM {QUEUE} WHERE id = $1 RETURNING id", doc_id)
    else:
        sql = f"DELETE FROM {QUEUE} WHERE id = $1 AND worker = $2 RETURNING id"
        row = await tx.fetchrow(sql, doc_id, worker)
    return row is not None


async def end(
    tx: Tx,
    doc_id: str,
    kind: str,
    *,
    worker: str | None,
    error: str | None = None,
    old: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """End a function in state `kind` if its queue row matches `worker` (see `dequeue`).

    `old` is its current document when the caller already has it. Returns the new
    document, or None when the function was not ours to end (nothing changed).
    """
    if not await dequeue(tx, doc_id, worker):
        return None
    old = old if old is not None else await read(tx, doc_id)
    if old is None:
        return None
    new = with_state(old, kind, error)
    await write(tx, old, new)
    return new


async def pending(pool: asyncpg.Pool, doc_id: str) -> Pending | None:
    """A function's document and the addresses of its rows, read outside any transaction."""
    row = await pool.fetchrow(
        f"SELECT d.doc, d.ctid AS doc_tid, q.ctid AS queue_tid FROM {TABLE_REF} d "
        f"LEFT JOIN {QUEUE} q ON q.id = d.id WHERE d.id = $1",
        doc_id,
    )
    if row is None:
        return None
    return Pending(orjson.loads(row["doc"]), row["doc_tid"], row["queue_tid"])


async def pending_many(pool: asyncpg.Pool, doc_ids: list[str]) -> dict[str, Pending]:
    """`pending` for many functions in one statement (those that exist)."""
    rows = await pool.fetch(
        f"SELECT d.id, d.doc, d.ctid AS doc_tid, q.ctid AS queue_tid FROM {TABLE_REF} d "
        f"LEFT JOIN {QUEUE} q ON q.id = d.id WHERE d.id = ANY($1::text[])",
        doc_ids,
    )
    return {r["id"]: Pending(orjson.loads(r["doc"]), r["doc_tid"], r["queue_tid"]) for r in rows}


async def start_action(
    tx: Tx, doc_id: str, worker: str, old: dict[str, Any]
) -> dict[str, Any] | None:
    """Mark a pending action as running on `worker`; None if it is no longer pending."""
    row = await tx.fetchrow(
        f"UPDATE {QUEUE} SET worker = $2 WHERE id = $1 AND worker IS NULL RETURNING id",
        doc_id,
        worker,
    )
    if row is None:
        return None
    new = with_state(old, IN_PROGRESS)
    await write(tx, old, new)
    return new
