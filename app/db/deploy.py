"""`convect deploy`: diff the app's schema against the database and apply it safely."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from app.db import ids, index_builds, key_fill, search_schema
from app.db.catalog import create_table_sql, key_fields
from app.db.sql import (
    KEY_PREFIX,
    SORT_KEY,
    create_index_sql,
    index_sql_name,
    key_column,
    table_ref,
)
from app.schema import SchemaDefinition
from app.values import decode_value

Hold = Callable[[str], Awaitable[None]]  # take a table's build lock before altering it
DEPLOY_LOCK = 0x64706C79  # "dply": advisory lock held while pushing a schema
MAX_REPORTED = 10


class SchemaRefused(Exception):
    """The schema push would destroy data or leaves documents invalid; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "Schema push refused:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nFix the schema or the data, or push with --force."
        )
        self.problems = problems


@dataclass
class DeployReport:
    """What a schema push did."""

    created_tables: list[str] = field(default_factory=list)
    created_indexes: list[str] = field(default_factory=list)
    dropped_indexes: list[str] = field(default_factory=list)
    dropped_tables: list[str] = field(default_factory=list)
    enabled_indexes: list[str] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)  # a state line per staged index
    unchanged: bool = False

    def changes(self) -> list[str]:
        """What this push changed, one line each."""
        out = [f"created table {t}" for t in self.created_tables]
        out += [f"created index {i}" for i in self.created_indexes]
        out += [f"enabled index {i}" for i in self.enabled_indexes]
        out += [f"dropped index {i}" for i in self.dropped_indexes]
        out += [f"dropped table {t}" for t in self.dropped_tables]
        return out

    def lines(self) -> list[str]:
        """Human-readable summary lines: the changes, then the staged indexes' states."""
        return (self.changes() or ["schema up to date"]) + self.staged


def _wanted_indexes(schema: SchemaDefinition | None) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    wanted: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    if schema is None:
        return wanted
    for table, tdef in schema.tables.items():
        for name, fields in tdef.indexes.items():
            wanted[index_sql_name(table, name)] = (table, name, fields)
    return wanted


def _staged_builds(schema: SchemaDefinition | None) -> dict[str, index_builds.StagedBuild]:
    """The staged indexes of the schema, by PostgreSQL name, with how to build each."""
    out: dict[str, index_builds.StagedBuild] = {}
    if schema is None:
        return out
    for table, tdef in schema.tables.items():
        for name in sorted(tdef.staged):
            sql_name = index_sql_name(table, name)
            if name in tdef.indexes:
                fields = tdef.indexes[name]
                statement = create_index_sql(table, name, fields, concurrently=True)
                out[sql_name] = index_builds.StagedBuild(
                    sql_name, table, name, "database", statement, _index_note(fields)
                )
            elif name in tdef.search_indexes:
                statement = search_schema.search_index_sql(table, name, True)
                out[sql_name] = index_builds.StagedBuild(sql_name, table, name, "search", statement)
            elif name in tdef.vector_indexes:
                statement = search_schema.vector_index_sql(table, name, True)
                out[sql_name] = index_builds.StagedBuild(sql_name, table, name, "vector", statement)
    return out


async def _existing_indexes(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch("SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'docs'")
    return {r["indexname"]: r["tablename"] for r in rows}


async def _index_details(conn: asyncpg.Connection) -> dict[str, tuple[bool, str | None]]:
    """Per index in `docs`: whether it is valid, and the fields we recorded in its comment."""
    rows = await conn.fetch(
        "SELECT c.relname AS name, i.indisvalid AS valid, obj_description(c.oid, 'pg_class') AS note "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'docs'"
    )
    return {r["name"]: (r["valid"], r["note"]) for r in rows}


async def _drop_expression_indexes(
    conn: asyncpg.Connection, say: Callable[[str], Any], report: DeployReport, hold: Hold
) -> None:
    """Drop indexes built on expressions over `doc` (before key columns existed); the rest
    of the push recreates them on the generated key columns."""
    rows = await conn.fetch(
        "SELECT indexname, tablename FROM pg_indexes "
        "WHERE schemaname = 'docs' AND indexdef LIKE '%(doc -> %'"
    )
    for r in rows:
        if ids.is_system_table(r["tablename"]):
            continue
        await hold(r["tablename"])
        say(f"rebuilding index {r['indexname']} on key columns")
        await conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS docs."{r["indexname"]}"')
        report.dropped_indexes.append(r["indexname"])


async def _key_columns(conn: asyncpg.Connection, table: str) -> dict[str, bool]:
    """A table's key columns, each with whether it holds sort keys: generated from
    `convect_sort_key`, or filled by a trigger (`app.db.key_fill`). Columns generated
    before sort keys existed (or left without their trigger) do not."""
    rows = await conn.fetch(
        "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS expr FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "AND starts_with(a.attname, $2)",
        table_ref(table),
        KEY_PREFIX,
    )
    by_trigger = await key_fill.trigger_filled(conn, table)
    return {r["attname"]: SORT_KEY in (r["expr"] or "") or r["attname"] in by_trigger for r in rows}


async def _add_key_columns(
    conn: asyncpg.Connection,
    schema: SchemaDefinition,
    tables: set[str],
    say: Callable[[str], Any],
    hold: Hold,
) -> dict[str, set[str]]:
    """Add the key columns that existing tables lack, filled by a trigger (no table
    rewrite: `app.db.key_fill`); return the key columns each table has that the schema
    no longer needs."""
    unused: dict[str, set[str]] = {}
    for table in sorted(tables):
        have = await _key_columns(conn, table)
        wanted = {key_column(f): f for f in key_fields(schema.tables[table])}
        outdated = sorted(c for c, current in have.items() if c in wanted and not current)
        if outdated:  # generated before sort keys: replace them (their indexes go with them)
            await hold(table)
            say(f"regenerating key columns of {table} with sort keys")
            await key_fill.alter(
                conn, table, await key_fill.drop_columns_sql(conn, table, outdated), say
            )
            for c in outdated:
                del have[c]
        missing = [f for col, f in sorted(wanted.items()) if col not in have]
        if missing:
            await hold(table)
            say(f"adding key columns {', '.join(missing)} to {table} (filled by a trigger)")
            await key_fill.add(conn, table, missing, say)
        unused[table] = set(have) - set(wanted)
    return unused


async def _fill_key_columns(
    conn: asyncpg.Connection,
    schema: SchemaDefinition,
    tables: set[str],
    say: Callable[[str], Any],
    hold: Hold,
) -> None:
    """Backfill the key columns that indexes enabled by this schema need (those only
    staged indexes need are left to the background builder)."""
    for table in sorted(tables):
        todo = await key_fill.unfilled(conn, table)
        needed = {key_column(f) for f in key_fields(schema.tables[table], staged=False)}
        cols = sorted(set(todo) & needed)
        if not cols:
            continue
        await hold(table)
        fields = ", ".join(todo[c] for c in cols)
        say(f"filling key columns {fields} of {table} (in batches; writes go on)")
        n = await key_fill.backfill(conn, table, cols)
        say(f"  {n} documents")


async def _drop_key_columns(
    conn: asyncpg.Connection, unused: dict[str, set[str]], say: Callable[[str], Any], hold: Hold
) -> None:
    for table, cols in sorted(unused.items()):
        if not cols:
            continue
        await hold(table)
        say(f"dropping unused key columns of {table}")
        await key_fill.alter(conn, table, await key_fill.drop_columns_sql(conn, table, cols), say)


def _index_note(fields: tuple[str, ...]) -> str:
    """The comment that records an index's fields (a safe SQL literal body)."""
    return orjson.dumps({"fields": list(fields)}).decode().replace("'", "''")


async def _validate_table(
    conn: asyncpg.Connection, table: str, schema: SchemaDefinition, problems: list[str]
) -> None:
    tdef = schema.tables[table]
    if tdef.validator is None or not schema.schema_validation:
        return
    bad = 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in conn.cursor(f"SELECT id, doc FROM {table_ref(table)}", prefetch=500):
            doc = decode_value(orjson.loads(row["doc"]))
            user = {k: v for k, v in doc.items() if k not in ("_id", "_creationTime")}
            try:
                tdef.validator.validate(user, "", id_table=ids.id_table)
            except ValueError as exc:
                bad += 1
                if bad <= MAX_REPORTED:
                    first = str(exc).splitlines()
                    problems.append(
                        f"{table} document {row['id']} does not match the schema: "
                        + " ".join(first[:3])
                    )
    if bad > MAX_REPORTED:
        problems.append(f"{table}: {bad - MAX_REPORTED} more documents do not match")


async def _advisory_lock(conn: asyncpg.Connection, key: int, say: Callable[[str], Any]) -> None:
    """Take a session advisory lock by polling, never by blocking in `pg_advisory_lock`.

    A session blocked in that statement holds a snapshot, and the holder's CREATE INDEX
    CONCURRENTLY waits for every older snapshot: two deploys at once would deadlock.
    """
    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
        return
    say("waiting for another deploy to finish")
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
        await asyncio.sleep(0.1)


async def push_schema(
    url_or_pool: str | asyncpg.Pool,
    schema: SchemaDefinition | None,
    *,
    force: bool = False,
    say: Callable[[str], Any] = lambda _: None,
) -> DeployReport:
    """Create tables and indexes the schema names, check existing data, refuse destruction."""
    if isinstance(url_or_pool, str):
        conn = await asyncpg.connect(url_or_pool)
    else:
        conn = await url_or_pool.acquire()
    report = DeployReport()
    try:
        await _advisory_lock(conn, DEPLOY_LOCK, say)
        locks = index_builds.TableLocks(conn, say)
        try:
            await _push(conn, schema, force, say, report, locks.hold)
        finally:
            await locks.release_all()
            await conn.execute("SELECT pg_advisory_unlock($1)", DEPLOY_LOCK)
    finally:
        if isinstance(url_or_pool, str):
            await conn.close()
        else:
            await url_or_pool.release(conn)
    return report


async def _push(
    conn: asyncpg.Connection,
    schema: SchemaDefinition | None,
    force: bool,
    say: Callable[[str], Any],
    report: DeployReport,
    hold: Hold,
) -> None:
    existing_tables = {r["name"] for r in await conn.fetch("SELECT name FROM _convect_tables")}
    user_tables = {t for t in existing_tables if not ids.is_system_table(t)}
    problems: list[str] = []
    wanted_tables = set(schema.tables) if schema is not None else set()
    to_drop: list[str] = []
    if schema is not None:
        for table in sorted(user_tables - wanted_tables):
            count = await conn.fetchval(
                f"SELECT count(*) FROM (SELECT 1 FROM {table_ref(table)} LIMIT 1) s"
            )
            if count:
                problems.append(
                    f"table {table} holds documents but is not in the schema "
                    "(pushing would delete them)"
                )
            to_drop.append(table)
        for table in sorted(wanted_tables & user_tables):
            await _validate_table(conn, table, schema, problems)
    derived = await search_schema.plan(conn, schema, user_tables, problems)
    if problems and not force:
        raise SchemaRefused(problems)

    for table in sorted(wanted_tables - existing_tables):
        say(f"creating table {table}")
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ids.table_number(table))
            for stmt in create_table_sql(table, schema.tables[table] if schema else None):
                await conn.execute(stmt)
            await conn.execute(
                "INSERT INTO _convect_tables (name, number) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                table,
                ids.table_number(table),
            )
        report.created_tables.append(table)

    await _drop_expression_indexes(conn, say, report, hold)
    unused_keys: dict[str, set[str]] = {}
    if schema is not None:
        unused_keys = await _add_key_columns(conn, schema, wanted_tables & user_tables, say, hold)
        await _fill_key_columns(conn, schema, wanted_tables & user_tables, say, hold)
    wanted = _wanted_indexes(schema)
    staged = _staged_builds(schema)
    enabled_statements = {
        sql_name: create_index_sql(table, name, fields, concurrently=True)
        for sql_name, (table, name, fields) in wanted.items()
        if sql_name not in staged
    } | search_schema.index_statements(schema)
    report.enabled_indexes += await index_builds.settle(conn, set(staged), enabled_statements, say)
    existing = await _existing_indexes(conn)
    details = await _index_details(conn)
    built: set[str] = set()
    for sql_name, (table, name, fields) in sorted(wanted.items()):
        note = _index_note(fields)
        if sql_name in staged:  # built in the background (app.db.index_builder)
            if details.get(sql_name) == (True, note):
                built.add(sql_name)
            continue
        if sql_name in existing:
            valid, recorded = details.get(sql_name, (True, note))
            if valid and recorded is None:  # built before fields were recorded: adopt it
                await conn.execute(f"COMMENT ON INDEX docs.\"{sql_name}\" IS '{note}'")
                continue
            if valid and recorded == note:
                continue
            # Its fields changed under the same name, or a concurrent build failed: rebuild.
            why = "was left invalid by a failed build" if not valid else "changed its fields"
            await hold(table)
            say(f"rebuilding index {table}.{name} ({why})")
            await conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS docs."{sql_name}"')
            report.dropped_indexes.append(sql_name)
        else:
            await hold(table)
            say(f"creating index {table}.{name} (concurrently)")
        await conn.execute(create_index_sql(table, name, fields, concurrently=True))
        await conn.execute(f"COMMENT ON INDEX docs.\"{sql_name}\" IS '{note}'")
        report.created_indexes.append(f"{table}.{name}")
    await search_schema.apply(
        conn,
        schema,
        derived,
        say,
        report.created_indexes,
        report.dropped_indexes,
        set(staged),
        hold,
    )
    usable = await index_builds.valid_indexes(conn)
    built |= {n for n, b in staged.items() if b.kind != "database" and n in usable}
    derived_names = search_schema.wanted_indexes(schema)
    for sql_name, table in sorted(existing.items()):
        builtin = sql_name.endswith("_pkey") or sql_name == f"{table}__by_creation_time"
        if builtin or sql_name in wanted or ids.is_system_table(table):
            continue
        if sql_name in derived_names:
            continue
        if "__" not in sql_name:
            continue  # not ours (search/vector indexes are named differently)
        await hold(table)
        say(f"dropping index {sql_name}")
        await conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS docs."{sql_name}"')
        report.dropped_indexes.append(sql_name)
    await _drop_key_columns(conn, unused_keys, say, hold)
    for table in to_drop:
        await hold(table)
        say(f"dropping table {table}")
        async with conn.transaction():
            for sql, args in await key_fill.drop_table_sql(conn, table):
                await conn.execute(sql, *args)
            await conn.execute(f"DROP TABLE IF EXISTS {table_ref(table)}")
            await conn.execute("DELETE FROM _convect_tables WHERE name = $1", table)
        report.dropped_tables.append(table)
    report.staged = await index_builds.record(conn, list(staged.values()), built)
    if schema is not None:
        await conn.execute(
            "INSERT INTO _convect_schema (id, schema) VALUES (1, $1::jsonb) "
            "ON CONFLICT (id) DO UPDATE SET schema = EXCLUDED.schema, deployed_at = now()",
            orjson.dumps(schema.to_json()).decode(),
        )
    report.unchanged = not report.changes()
