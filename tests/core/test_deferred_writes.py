"""Held-back writes (`Tx.defer`): sent before the next statement, or inside the commit-log
statement; a savepoint's are dropped with it; a moved row is still written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from app.db import ids
from app.db.transaction import Tx, combine, serializable
from app.engine import COMMIT_SQL
from app.scheduler import documents as rows
from tests.support.servers import create_database


@pytest.fixture(scope="module")
async def conn(services: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    url = await create_database(services["database_url"], "deferred_writes")
    connection = await asyncpg.connect(url)
    await connection.execute("CREATE TABLE held (id text PRIMARY KEY, n int)")
    try:
        yield connection
    finally:
        await connection.close()


class Rows:
    """A held-back batch of rows for table `held`."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int]] = []
        self.settled: list[list[int]] = []

    def statements(self) -> list[tuple[str, list[Any]]]:
        return [
            (
                "INSERT INTO held (id, n) SELECT * FROM unnest($1::text[], $2::int[])",
                [[r[0] for r in self.rows], [r[1] for r in self.rows]],
            )
        ]

    standalone = True  # new rows only

    async def settle(self, conn: asyncpg.Connection, changed: list[int]) -> None:
        self.settled.append(changed)


def test_combine_renumbers_each_parts_parameters_after_the_tails() -> None:
    sql, args = combine(
        [("UPDATE a SET x = $1 WHERE id = $2", [1, "a"]), ("DELETE FROM b WHERE id = $1", ["b"])],
        "INSERT INTO c (v) VALUES ($1) RETURNING ts",
        ["v"],
    )
    assert sql == (
        "WITH w0 AS (UPDATE a SET x = $2 WHERE id = $3 RETURNING 1), "
        "w1 AS (DELETE FROM b WHERE id = $4 RETURNING 1) "
        "INSERT INTO c (v) VALUES ($1) RETURNING ts, "
        "(SELECT count(*) FROM w0) AS w0, (SELECT count(*) FROM w1) AS w1"
    )
    assert args == ["v", 1, "a", "b"]


async def test_held_rows_are_sent_before_the_next_statement(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE held")
    tx = Tx(conn, writable=True)
    async with serializable(tx):
        batch = tx.defer("held", Rows)
        batch.rows += [("a", 1), ("b", 2)]
        assert tx.defer("held", Rows) is batch  # one batch per name
        assert await conn.fetchval("SELECT count(*) FROM held") == 0  # not sent yet
        assert await tx.fetchrow("SELECT sum(n) AS s FROM held") == (3,)
        assert batch.settled == [[2]]


async def test_held_rows_ride_in_the_commit_log_statement(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE held")
    tx = Tx(conn, writable=True)
    async with serializable(tx):
        tx.defer("held", Rows).rows.append(("c", 5))
        row = await tx.flush_with(COMMIT_SQL, ["[]"])
        assert row is not None and row["ts"] > 0 and row["w0"] == 1
        assert tx.statements == 1
    assert await conn.fetchval("SELECT n FROM held WHERE id = 'c'") == 5


async def test_a_discarded_batch_is_never_sent(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE held")
    tx = Tx(conn, writable=True)
    async with serializable(tx):
        tx.defer("held", Rows).rows.append(("d", 1))
        tx.discard_deferred()
        await tx.flush()
        assert await tx.fetchrow("SELECT count(*) FROM held") == (0,)


async def test_a_state_change_finds_its_row_by_id_when_its_address_moved(
    services: dict[str, str],
) -> None:
    url = await create_database(services["database_url"], "deferred_state")
    db = await asyncpg.connect(url)
    try:
        doc_id = ids.new_id(rows.TABLE)
        doc = rows.new_document(doc_id, "m:f", {}, 0.0, creation_time=1.0)
        tx = Tx(db, writable=True)
        async with serializable(tx):
            rows.insert_later(tx, doc)
            await tx.flush_with(COMMIT_SQL, ["[]"])
        tid = await db.fetchval(f"SELECT ctid FROM {rows.TABLE_REF} WHERE id = $1", doc_id)
        await db.execute(f"UPDATE {rows.TABLE_REF} SET doc = doc WHERE id = $1", doc_id)  # moves
        tx = Tx(db, writable=True)
        async with serializable(tx):
            rows.write_later(tx, doc, rows.with_state(doc, rows.SUCCESS), tid)
            row = await tx.flush_with(COMMIT_SQL, ["[]"])
            assert row is not None and row["w0"] == 0  # the address was stale
        state = await db.fetchval(
            f"SELECT doc->'state'->>'kind' FROM {rows.TABLE_REF} WHERE id = $1", doc_id
        )
        assert state == rows.SUCCESS
        queued = await db.fetchval(f"SELECT count(*) FROM {rows.QUEUE} WHERE id = $1", doc_id)
        assert queued == 1  # inserted with its row (the run would have dequeued it)
    finally:
        await db.close()


def test_combine_checks_expected_row_counts_in_the_same_statement() -> None:
    sql, _ = combine(
        [("INSERT INTO a VALUES ($1)", [1]), ("UPDATE b SET x = 1 WHERE id = $1", ["b"])],
        "SELECT 1 AS one",
        [],
        [None, 1],
    )
    assert sql.endswith(
        "(SELECT count(*) FROM w0) AS w0, (SELECT count(*) FROM w1) AS w1, "
        "_convect_unchanged((SELECT count(*) FROM w1) = 1) AS unchanged"
    )


async def test_an_update_that_found_another_version_fails_the_whole_statement(
    conn: asyncpg.Connection,
) -> None:
    """The optimistic commit: one part changes nothing (its row has another version),
    so the statement fails as a serialization failure and the other part is undone."""
    await conn.execute("TRUNCATE held")
    await conn.execute("INSERT INTO held VALUES ('v', 1)")
    sql, args = combine(
        [
            ("INSERT INTO held (id, n) VALUES ($1, $2)", ["w", 2]),
            ("UPDATE held SET n = 5 WHERE id = $1 AND xmin = $2::text::xid", ["v", "1"]),
        ],
        "SELECT 1 AS one",
        [],
        [None, 1],
    )
    with pytest.raises(asyncpg.SerializationError):
        await conn.fetchrow(sql, *args)
    assert await conn.fetch("SELECT id, n FROM held ORDER BY id") == [("v", 1)]
