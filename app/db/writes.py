"""A mutation's document inserts and updates, held back and sent with its commit-log row.

A mutation that writes without reading afterwards (most do) then costs one statement for
all its writes and the commit-log row together, instead of one round trip per write.
Reads see every write: `Tx` sends held-back writes before any statement that could
observe them, and a document the mutation wrote is read from `Tx.cache`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db.errors import DocumentError
from app.db.sql import table_ref

UNNEST_MIN_ROWS = 4  # from this many new rows of one table on, one INSERT ... unnest


@dataclass
class _Row:
    """The latest held-back state of one document."""

    table: str
    id: str
    insert: bool
    creation_time: float
    text: str
    extra_cols: list[str]
    extra_vals: list[Any]


class DocumentWrites:
    """The held-back document writes of one transaction (a `Tx.defer` batch).

    Several writes of one document collapse to its last state (an insert stays an
    insert), so each row is touched by one statement, as `combine` requires. Updates go
    by primary key, in id order (concurrent mutations lock shared rows in one order);
    many rows of one table go in one statement each for inserts and for updates.
    """

    key = "documents"

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}
        self._updates: list[list[str]] = []  # ids of each update `statements` returned
        self._expected: list[int | None] = []  # per statement `statements` returned
        # An optimistic Tx's versions read (`Tx.versions`): each update then requires
        # the version its document had when read (see `Tx.optimistic`).
        self.versions: dict[str, str | None] | None = None

    def put(
        self,
        table: str,
        doc_id: str,
        *,
        insert: bool,
        creation_time: float,
        text: str,
        extra_cols: list[str],
        extra_vals: list[Any],
    ) -> None:
        """Hold `text` as the document's new state."""
        prior = self.rows.get(doc_id)
        self.rows[doc_id] = _Row(
            table,
            doc_id,
            insert or (prior is not None and prior.insert),
            creation_time,
            text,
            extra_cols,
            extra_vals,
        )

    def statements(self) -> list[tuple[str, list[Any]]]:
        """Inserts grouped by table, then updates by id."""
        out: list[tuple[str, list[Any]]] = []
        self._updates = []
        versions = self.versions
        inserts: dict[str, list[_Row]] = {}
        for row in self.rows.values():
            if row.insert:
                inserts.setdefault(row.table, []).append(row)
        for table, rows in inserts.items():
            if len(rows) >= UNNEST_MIN_ROWS and not rows[0].extra_cols:
                out.append(
                    (
                        f"INSERT INTO {table_ref(table)} (id, creation_time, doc) "
                        "SELECT * FROM unnest($1::text[], $2::float8[], $3::jsonb[])",
                        [
                            [r.id for r in rows],
                            [r.creation_time for r in rows],
                            [r.text for r in rows],
                        ],
                    )
                )
            else:
                out.extend(_insert_one(r) for r in rows)
        updates: dict[str, list[_Row]] = {}
        for row in sorted(self.rows.values(), key=lambda r: r.id):
            if not row.insert:
                updates.setdefault(row.table, []).append(row)
        inserted = len(out)
        for table, rows in updates.items():
            if versions is not None:  # optimistic: each at the version read
                out.extend(_update_one(r, versions.get(r.id)) for r in rows)
                self._updates.extend([r.id] for r in rows)
            elif len(rows) >= UNNEST_MIN_ROWS and not rows[0].extra_cols:
                # Many rows: one statement (a plan over the batch, not an index probe each).
                out.append(
                    (
                        f"UPDATE {table_ref(table)} AS t SET doc = v.doc "
                        "FROM unnest($1::text[], $2::jsonb[]) AS v(id, doc) WHERE t.id = v.id",
                        [[r.id for r in rows], [r.text for r in rows]],
                    )
                )
                self._updates.append([r.id for r in rows])
            else:
                out.extend(_update_one(r) for r in rows)
                self._updates.extend([r.id] for r in rows)
        self._expected = [None] * inserted + [len(ids_) for ids_ in self._updates]
        return out

    @property
    def standalone(self) -> bool:
        """Only inserts (new ids), or updates at the versions read: they may commit as one
        statement on its own."""
        versions = self.versions
        return all(
            row.insert or (versions is not None and versions.get(row.id) is not None)
            for row in self.rows.values()
        )

    def expected(self) -> list[int | None]:
        """Per statement of the last `statements`: every update must find its row."""
        return self._expected if self.versions is not None else [None] * len(self._expected)

    async def settle(self, conn: asyncpg.Connection, changed: list[int]) -> None:
        """Check that each update found its rows (inserts either all land or fail)."""
        counts = changed[len(changed) - len(self._updates) :]
        for ids_, count in zip(self._updates, counts, strict=True):
            if count != len(ids_):  # deleted by a concurrent READ COMMITTED system transaction
                raise DocumentError(f"Update on nonexistent document ID {ids_[0]}")


def _insert_one(row: _Row) -> tuple[str, list[Any]]:
    cols = ["id", "creation_time", "doc", *row.extra_cols]
    values = ["$1", "$2", "$3::jsonb"] + [f"${i + 4}" for i in range(len(row.extra_cols))]
    return (
        f"INSERT INTO {table_ref(row.table)} ({', '.join(cols)}) VALUES ({', '.join(values)})",
        [row.id, row.creation_time, row.text, *row.extra_vals],
    )


def _update_one(row: _Row, version: str | None = None) -> tuple[str, list[Any]]:
    """One document's update; with `version`, only while its row still has that xmin."""
    sets = ["doc = $2::jsonb"] + [f"{c} = ${i + 3}" for i, c in enumerate(row.extra_cols)]
    where, args = "id = $1", [row.id, row.text, *row.extra_vals]
    if version is not None:
        args.append(version)
        where += f" AND xmin = ${len(args)}::text::xid"
    return (f"UPDATE {table_ref(row.table)} SET {', '.join(sets)} WHERE {where}", args)


__all__ = ["DocumentWrites"]
