"""Rows of `_scheduled_functions`: their document layout, state changes and SQL.

A row is a document like any other (`id`, `creation_time`, `doc`), readable through
`ctx.db.system`, with Convex's fields: `name` (function path), `args` (`[args]`),
`scheduledTime` (ms), `state` (`{"kind": ...}`, `"error"` when failed) and
`completedTime` once it ended. The hidden `worker` column names the worker running an
in-progress action. Every change is recorded on the Tx so live queries see it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import orjson

from app.db import ids
from app.db.database import _creation_time
from app.db.transaction import Tx

TABLE = "_scheduled_functions"
TABLE_REF = 'docs."_scheduled_functions"'
PENDING = "pending"
IN_PROGRESS = "inProgress"
SUCCESS = "success"
FAILED = "failed"
CANCELED = "canceled"
TERMINAL = frozenset({SUCCESS, FAILED, CANCELED})
DUE = "((doc ->> 'scheduledTime')::float8)"
KIND = "(doc -> 'state' ->> 'kind')"


def now_ms() -> float:
    """Milliseconds since the epoch."""
    return time.time() * 1000.0


def new_document(doc_id: str, path: str, encoded_args: Any, scheduled_ms: float) -> dict[str, Any]:
    """A pending row (wire-encoded, as stored)."""
    return {
        "_id": doc_id,
        "_creationTime": _creation_time(),
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


_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


async def insert(tx: Tx, doc: dict[str, Any], *, if_absent: bool = False) -> bool:
    """Insert a row in `tx`; with `if_absent`, do nothing (and return False) if the id exists."""
    sql = f"INSERT INTO {TABLE_REF} (id, creation_time, doc) VALUES ($1, $2, $3::jsonb)"
    if if_absent:
        sql += " ON CONFLICT (id) DO NOTHING RETURNING id"
        row = await tx.fetchrow(sql, doc["_id"], doc["_creationTime"], orjson.dumps(doc).decode())
        if row is None:
            return False
    else:
        await tx.execute(sql, doc["_id"], doc["_creationTime"], orjson.dumps(doc).decode())
    tx.record_write(TABLE, doc["_id"], None, doc)
    return True


async def lock(tx: Tx, doc_id: str) -> tuple[dict[str, Any], str | None] | None:
    """The row (document, worker) locked for update in `tx`, or None."""
    row = await tx.fetchrow(f"SELECT doc, worker FROM {TABLE_REF} WHERE id = $1 FOR UPDATE", doc_id)
    if row is None:
        return None
    return orjson.loads(row["doc"]), row["worker"]


async def update(
    tx: Tx, old: dict[str, Any], new: dict[str, Any], worker: str | None = None
) -> None:
    """Store `new` over `old` in `tx` (and the worker running it, if any)."""
    await tx.execute(
        f"UPDATE {TABLE_REF} SET doc = $2::jsonb, worker = $3 WHERE id = $1",
        new["_id"],
        orjson.dumps(new).decode(),
        worker,
    )
    tx.record_write(TABLE, new["_id"], old, new)


async def transition(
    tx: Tx,
    doc_id: str,
    from_kinds: frozenset[str] | set[str],
    kind: str,
    *,
    error: str | None = None,
    worker: str | None = None,
    only_worker: str | None = None,
) -> dict[str, Any] | None:
    """Move a row from one of `from_kinds` to `kind`; the new document, or None if it was not."""
    locked = await lock(tx, doc_id)
    if locked is None:
        return None
    old, current_worker = locked
    if state_of(old) not in from_kinds:
        return None
    if only_worker is not None and current_worker != only_worker:
        return None
    new = with_state(old, kind, error)
    await update(tx, old, new, worker)
    return new
