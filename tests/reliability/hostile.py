"""What the fuzzers share: a database fingerprint and a report of the run.

A case the server rejected must leave the database exactly as it was: a fingerprint of
every table's row count (documents, catalog, commit log, dedupe records, scheduled
functions, files) is taken before and after each case (hostile_http.py,
hostile_sync.py). Accepted calls may write; the fingerprint is then taken afresh.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

C = TypeVar("C")


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

    def within(self, cases: Iterable[C], budget_s: float) -> Iterator[C]:
        """The cases one by one, counted, until `budget_s` seconds have passed; the time taken
        goes to `seconds`."""
        started = time.monotonic()
        try:
            for case in cases:
                if time.monotonic() - started > budget_s:
                    break
                self.cases += 1
                yield case
        finally:
            self.seconds = time.monotonic() - started


def changes(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int | None, int]]:
    """The tables whose row counts differ between two fingerprints: (before, after)."""
    return {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
