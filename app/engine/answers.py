"""A socket mutation's stored answer, so that a resent request is answered, not re-run.

The sync protocol resends a mutation whose answer a dropped socket lost, with the same
session and request id. Its answer (value and commit ts) is stored in the transaction
of its commit. An optimistic commit is one statement, whose ts is made in it: the
answer goes in that statement without the ts, and a resend finds the ts by the
transaction both rows share (`xid`, migration 0009).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

if TYPE_CHECKING:
    from app.db.transaction import Tx

Session = tuple[str, int]

_FIND = (
    "SELECT r.response::text AS response, "
    "(SELECT c.ts FROM _convect_commits c WHERE c.xid = r.xid) AS ts "
    "FROM _convect_mutation_requests r WHERE r.session_id = $1 AND r.request_id = $2"
)
_STORE = (
    "INSERT INTO _convect_mutation_requests (session_id, request_id, response) "
    "VALUES ($1, $2, $3::jsonb)"
)
_NEWEST_TS = "SELECT coalesce(max(ts), 0) FROM _convect_commits"


def is_duplicate(exc: BaseException) -> bool:
    """True when another run of the same request stored its answer first (a resend that
    overtook the first send): run again, and the answer is found. Under SERIALIZABLE
    PostgreSQL reports this as a serialization failure; an optimistic commit, on its own,
    sees the unique violation."""
    return (
        isinstance(exc, asyncpg.UniqueViolationError)
        and exc.constraint_name == "_convect_mutation_requests_pkey"
    )


async def find(conn: asyncpg.Connection, session: Session) -> tuple[Any, int] | None:
    """The stored answer to this request: (wire-encoded value, commit ts), or None."""
    row = await conn.fetchrow(_FIND, *session)
    if row is None:
        return None
    stored = orjson.loads(row["response"])
    ts = stored.get("ts", row["ts"])
    if ts is None:  # its commit-log row is gone: any later ts is past the commit
        ts = await conn.fetchval(_NEWEST_TS)
    return stored["value"], int(ts)


async def store(conn: asyncpg.Connection, session: Session, encoded: Any, ts: int) -> None:
    """Store the answer in the open transaction (or on its own, after a read-only commit)."""
    await conn.execute(_STORE, *session, orjson.dumps({"value": encoded, "ts": ts}).decode())


class HeldAnswer:
    """The answer as a held-back write (`Tx.defer`), sent in the commit statement."""

    key = "mutation_answer"
    standalone = True  # a new row

    def __init__(self, session: Session, encoded: Any) -> None:
        self.session = session
        self.encoded = encoded

    def statements(self) -> list[tuple[str, list[Any]]]:
        """The answer's insert, without the ts (made in the same statement)."""
        return [(_STORE, [*self.session, orjson.dumps({"value": self.encoded}).decode()])]

    def expected(self) -> list[int | None]:
        """No version to check."""
        return [None]

    async def settle(self, conn: asyncpg.Connection, changed: list[int]) -> None:
        """Nothing to put right: the row is inserted or the statement failed."""


def hold(tx: Tx, session: Session, encoded: Any) -> None:
    """Send the answer with `tx`'s commit statement (an optimistic commit)."""
    tx.defer(HeldAnswer.key, lambda: HeldAnswer(session, encoded))
