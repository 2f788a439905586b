"""One function run's hold on the database: its connection, counters, read and write sets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Protocol, TypeVar, cast

import asyncpg

from app.db.errors import LimitError, NeedsSerializable, NeedsTransaction, is_retryable
from app.db.readset import ReadSet, Write

MAX_READS = 16_384
MAX_WRITES = 8_192
LOCK_TIMEOUT_MS = 30  # how long a mutation waits for a row lock before it is re-run
PATIENT_ATTEMPTS = 2  # the last attempts wait as long as it takes (a long-running holder)


def lock_timeout_ms(attempt: int, attempts: int) -> int:
    """The lock wait limit of attempt `attempt` (0-based) of `attempts`; 0 means no limit."""
    return 0 if attempt >= attempts - PATIENT_ATTEMPTS else LOCK_TIMEOUT_MS


@asynccontextmanager
async def serializable(tx: Tx, lock_timeout: int = 0) -> AsyncIterator[None]:
    """A SERIALIZABLE transaction for `tx`, its row-lock waits limited; COMMIT or ROLLBACK
    at exit.

    BEGIN is sent with the Tx's first statement (`Tx.begin`), not here: a mutation that
    only inserts sends no statement before its commit, and then its writes and its
    commit-log row go as one statement on its own (`Tx.flush_with(final=True)`): one
    round trip instead of BEGIN, statement, COMMIT. A statement that only inserts new
    rows reads nothing, so no isolation level could order it differently; a mutation
    that sends nothing at all needs no transaction.

    A mutation waiting for a row lock held by another one fails with a serialization
    error as soon as that one commits, and two that lock rows in opposite orders wait
    for PostgreSQL's deadlock check (1 s). A short `lock_timeout` in ms (SQLSTATE 55P03,
    retryable) turns both into a prompt retry.

    No sequential scans: on a small table (100 accounts fit in two pages) the planner
    prefers one over the primary key, and under SERIALIZABLE a sequential scan
    predicate-locks the whole table, so every concurrent write to it conflicts (a
    transfer benchmark fell from ~400 to ~80 calls/s with half its calls giving up).
    A mutation reads at most 16,384 documents, so index scans are never the wrong
    choice there. BEGIN and both SETs share one round trip.
    """
    tx.begin_with(
        "BEGIN ISOLATION LEVEL SERIALIZABLE; "
        f"SET LOCAL lock_timeout = {int(lock_timeout)}; SET LOCAL enable_seqscan = off"
    )
    try:
        yield
    except BaseException:
        if tx.in_transaction:
            await _rollback(tx.conn, "ROLLBACK")
        else:
            tx.begin_with(None)
        raise
    if tx.in_transaction:
        await tx.conn.execute("COMMIT")
    tx.begin_with(None)


@asynccontextmanager
async def savepoint(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A savepoint inside a transaction begun by `serializable` (nested run_mutation)."""
    await conn.execute("SAVEPOINT convect_nested")
    try:
        yield
    except BaseException:
        await _rollback(
            conn, "ROLLBACK TO SAVEPOINT convect_nested; RELEASE SAVEPOINT convect_nested"
        )
        raise
    await conn.execute("RELEASE SAVEPOINT convect_nested")


async def _rollback(conn: asyncpg.Connection, statement: str) -> None:
    """Roll back; a connection that cannot is closed, never returned to the pool mid-transaction."""
    try:
        await conn.execute(statement)
    except BaseException:
        conn.terminate()
        raise


class Deferred(Protocol):
    """Writes a Tx holds back and sends in one statement before its next one (see `Tx.defer`)."""

    def statements(self) -> list[tuple[str, list[Any]]]:
        """The held writes: data-modifying statements without RETURNING ($1, $2, ... each)."""

    async def settle(self, conn: asyncpg.Connection, changed: list[int]) -> None:
        """Hear how many rows each statement changed (and put right what needs it)."""

    @property
    def standalone(self) -> bool:
        """True when these writes may commit as one statement with no transaction around
        it: they only insert new rows, or update rows at a version checked by
        `expected`, and `settle` sends nothing."""

    def expected(self) -> list[int | None]:
        """Per statement, the rows it must change in an optimistic commit (None: any)."""


D = TypeVar("D", bound=Deferred)

_PARAM = re.compile(r"\$(\d+)")


def _shift(match: re.Match[str], offset: int) -> str:
    return f"${int(match.group(1)) + offset}"


def combine(
    parts: list[tuple[str, list[Any]]],
    tail: str,
    tail_args: list[Any],
    expect: list[int | None] | None = None,
) -> tuple[str, list[Any]]:
    """One statement running `parts` as CTEs of `tail`; its row ends with each part's count.

    `tail` returns one row and ends with its output list (`SELECT ...` or `INSERT ...
    RETURNING ...`), with parameters $1..$len(tail_args); the parts' parameters are
    renumbered after those. All parts see one snapshot and none sees another's writes,
    so they must touch different rows (held-back writes do: new rows, and one state
    change per scheduled function).

    `expect`: per part, the rows it must change (None: any number); a part that changes
    another number fails the whole statement as a serialization failure (migration 0009's
    `_convect_unchanged`).
    """
    args = list(tail_args)
    for _, part_args in parts:
        args.extend(part_args)
    shape = (
        tuple((sql, len(part_args)) for sql, part_args in parts),
        tail,
        len(tail_args),
        tuple(expect) if expect else (),
    )
    if len(parts) > _MAX_CACHED_PARTS:  # a big batch: its text would be a big key
        return _combined_sql(*shape), args
    sql = _COMBINED.get(shape)
    if sql is None:
        sql = _combined_sql(*shape)
        if len(_COMBINED) >= _MAX_COMBINED:
            _COMBINED.clear()
        _COMBINED[shape] = sql
    return sql, args


# Statement text by shape: a mutation's commit statement has the same few shapes call
# after call, and building one (renumbering every part's parameters) costs microseconds.
_COMBINED: dict[tuple[Any, ...], str] = {}
_MAX_COMBINED = 1024
_MAX_CACHED_PARTS = 8


def _combined_sql(
    parts: tuple[tuple[str, int], ...], tail: str, offset: int, expect: tuple[int | None, ...]
) -> str:
    ctes: list[str] = []
    counts: list[str] = []
    for i, (sql, n_args) in enumerate(parts):
        renumbered = _PARAM.sub(partial(_shift, offset=offset), sql)
        ctes.append(f"w{i} AS ({renumbered} RETURNING 1)")
        counts.append(f"(SELECT count(*) FROM w{i}) AS w{i}")
        offset += n_args
    checks = [
        f"(SELECT count(*) FROM w{i}) = {int(n)}" for i, n in enumerate(expect) if n is not None
    ]
    if checks:
        counts.append(f"_convect_unchanged({' AND '.join(checks)}) AS unchanged")
    return f"WITH {', '.join(ctes)} {tail}, {', '.join(counts)}"


_FLUSHED = "SELECT true AS flushed"
MAX_PARAMS = 32_000  # PostgreSQL takes at most 65,535 parameters in one statement
MAX_PARTS = 1_000  # and at most 1,664 result columns (one count per part)


def _chunks(
    parts: list[tuple[str, list[Any]]], limit: int, max_parts: int = MAX_PARTS
) -> list[tuple[list[tuple[str, list[Any]]], bool]]:
    """`parts` cut into runs of at most `limit` parameters (a bigger part goes alone) and
    `max_parts` parts; the flag marks the last run."""
    out: list[list[tuple[str, list[Any]]]] = [[]]
    used = 0
    for part in parts:
        if out[-1] and (used + len(part[1]) > limit or len(out[-1]) >= max_parts):
            out.append([])
            used = 0
        out[-1].append(part)
        used += len(part[1])
    return [(chunk, i == len(out) - 1) for i, chunk in enumerate(out)]


class Tx:
    """Statements of one query or mutation, on one connection.

    A query may start `lazy`: its first statement runs on its own (a single statement
    already reads one snapshot, and BEGIN/COMMIT would cost two round trips); a second
    statement raises `NeedsTransaction` and the executor re-runs the query inside a
    REPEATABLE READ transaction. Queries are read-only, so re-running is safe.
    """

    def __init__(self, conn: asyncpg.Connection, *, writable: bool, lazy: bool = False) -> None:
        self.conn = conn
        self.writable = writable
        self.lazy = lazy
        self.statements = 0
        self.reads = 0
        self.read_set = ReadSet()
        self.writes: dict[str, Write] = {}
        self.cache: dict[str, dict[str, Any] | None] = {}
        self.doomed: BaseException | None = None
        self._deferred: dict[str, Deferred] = {}
        # Convex's query journal (see app.db.paginate): the end cursor the first
        # `paginate` of a live re-run ends at, and that page's continue cursor after it.
        self.page_journal: str | None = None
        self.page_journal_used = False
        self._begin: str | None = None  # BEGIN to send before the first statement
        # Optimistic (a mutation, no transaction): reads by id only, each on its own,
        # remembering the version read; the commit statement updates a document only if
        # it still has that version, else the whole statement fails as a conflict. Any
        # other statement raises `NeedsSerializable` (see `Executor._mutation`).
        self.optimistic = False
        self.versions: dict[str, str | None] = {}  # document id -> xmin read (None: absent)
        # Waits for this process's other optimistic mutations to be done with a document
        # before it is read (app.engine.latches); None: no latches.
        self.latch: Callable[[str], Awaitable[None]] | None = None
        self.in_transaction = False  # that BEGIN went out (COMMIT or ROLLBACK is due)
        # The writes as the commit-log row holds them, once it was written (the hub
        # matches the same list against its live queries after the commit).
        self.projected: list[list[Any]] | None = None

    def begin_with(self, sql: str | None) -> None:
        """Send `sql` (a BEGIN) before this Tx's first statement; None: no transaction."""
        self._begin = sql
        if sql is None:
            self.in_transaction = False

    async def begin(self) -> None:
        """Send the pending BEGIN now (before a statement, or a savepoint)."""
        sql = self._begin
        if sql is not None:
            self._begin = None
            await self.conn.execute(sql)
            self.in_transaction = True

    def defer(self, key: str, make: Callable[[], D]) -> D:
        """The held-back batch of writes named `key` (made by `make()` if there is none).

        A batch is sent in one statement before this Tx's next statement, so every read
        sees it, and at the latest before the commit-log row (`flush`). Many small writes
        of one kind (a mutation scheduling 100 functions) cost one round trip.
        """
        batch = self._deferred.get(key)
        if batch is None:
            made = make()
            self._deferred[key] = made
            return made
        return cast(D, batch)  # made by the `make` of this key's first call

    async def flush(self) -> None:
        """Send every held-back write (one statement)."""
        if self._deferred:
            await self.flush_with(_FLUSHED, [])

    async def flush_with(
        self, tail: str, args: list[Any], *, final: bool = False
    ) -> asyncpg.Record | None:
        """Run `tail` (one row out) with every held-back write as its CTEs; its row.

        `final`: the transaction's last statement. When no statement has been sent yet
        and everything fits in one statement, it runs alone, without BEGIN (see
        `serializable`); its row's arrival is then the commit.
        """
        batches = list(self._deferred.values())
        self._deferred.clear()
        parts = [batch.statements() for batch in batches]
        flat = [part for group in parts for part in group]
        runs = _chunks(flat, MAX_PARAMS - len(args))
        alone = final and len(runs) == 1 and all(b.standalone for b in batches)
        if self.optimistic and not alone:
            raise NeedsSerializable
        if self._begin is not None:
            if alone:
                self._begin = None  # one statement: its own transaction
            else:
                await self.begin()
        if not flat:
            return await self.conn.fetchrow(tail, *args)
        expect = [n for b in batches for n in b.expected()] if self.optimistic else None
        changed: list[int] = []
        row: asyncpg.Record | None = None
        for chunk, last in runs:
            sql, all_args = (
                combine(chunk, tail, args, expect) if last else combine(chunk, _FLUSHED, [])
            )
            self.statements += 1
            try:
                row = await self.conn.fetchrow(sql, *all_args)
            except asyncpg.PostgresError as exc:
                self._failed(exc)
                raise
            assert row is not None
            changed += [int(row[f"w{i}"]) for i in range(len(chunk))]
        for batch, group in zip(batches, parts, strict=True):
            await batch.settle(self.conn, changed[: len(group)])
            changed = changed[len(group) :]
        return row

    def deferred(self, key: str) -> Deferred | None:
        """The held-back batch named `key`, if any."""
        return self._deferred.get(key)

    def discard_deferred(self) -> None:
        """Drop held-back writes (their savepoint rolled back before they were sent)."""
        self._deferred.clear()

    async def _before(self) -> None:
        if self.lazy and self.statements >= 1:
            raise NeedsTransaction
        if self.optimistic:
            raise NeedsSerializable
        self.statements += 1
        if self._begin is not None:
            await self.begin()

    def _failed(self, exc: BaseException) -> None:
        if is_retryable(exc):
            self.doomed = exc

    async def read_version(self, sql: str, doc_id: str) -> asyncpg.Record | None:
        """An optimistic read by id: `sql` returns the row with its `xmin::text AS v`; the
        version is remembered for the commit's check."""
        if self.latch is not None:
            await self.latch(doc_id)
        self.statements += 1
        try:
            row: asyncpg.Record | None = await self.conn.fetchrow(sql, doc_id)
        except asyncpg.PostgresError as exc:
            self._failed(exc)
            raise
        self.versions[doc_id] = row["v"] if row is not None else None
        return row

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Run a statement, return its rows."""
        await self._before()
        if self._deferred:
            await self.flush()
        try:
            rows: list[asyncpg.Record] = await self.conn.fetch(sql, *args)
        except asyncpg.PostgresError as exc:
            self._failed(exc)
            raise
        return rows

    async def fetchrow(self, sql: str, *args: Any, flush: bool = True) -> asyncpg.Record | None:
        """Run a statement, return its first row (`flush=False`: one that cannot see the
        held-back writes, such as a read by id of a document this Tx did not write)."""
        await self._before()
        if flush and self._deferred:
            await self.flush()
        try:
            return await self.conn.fetchrow(sql, *args)
        except asyncpg.PostgresError as exc:
            self._failed(exc)
            raise

    async def execute(self, sql: str, *args: Any) -> str:
        """Run a statement for its effect."""
        await self._before()
        if self._deferred:
            await self.flush()
        try:
            status: str = await self.conn.execute(sql, *args)
        except asyncpg.PostgresError as exc:
            self._failed(exc)
            raise
        return status

    def count_reads(self, n: int) -> None:
        """Account for `n` documents read; enforce the per-function limit."""
        self.reads += n
        if self.reads > MAX_READS:
            raise LimitError(
                f"Too many documents read in a single function execution (limit: {MAX_READS})."
            )

    def record_write(
        self, table: str, doc_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        """Remember a change (first old, last new) and enforce the per-mutation limit."""
        existing = self.writes.get(doc_id)
        if existing is not None:
            existing.new = new
        else:
            if len(self.writes) >= MAX_WRITES:
                raise LimitError(
                    f"Too many documents written in a single mutation (limit: {MAX_WRITES})."
                )
            self.writes[doc_id] = Write(table, doc_id, old, new)
        self.cache[doc_id] = new
