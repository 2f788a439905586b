"""Derived columns of search and vector indexes: DDL, and building them on deploy.

Per search index: `ts__<index> tsvector GENERATED ALWAYS AS (...) STORED` and a GIN
index. Per vector index: `vec__<index> vector(N)` (written by the document writer) and
an HNSW index (cosine). Filter fields get a btree on their value unless a schema index
already starts with that field. Each derived column carries a comment recording what it
was built from, so a deploy rebuilds exactly the columns whose definition changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from app.db.derived import TS_PREFIX, VECTOR_PREFIX, doc_vector, ts_column, vector_column
from app.db.sql import check_field_path, index_sql_name, key_sql, table_ref
from app.schema import SchemaDefinition, TableDefinition
from app.schema.definition import SearchIndex, VectorIndex

BACKFILL_BATCH = 1000
MAX_REPORTED = 10
INDEX_BUILD_MEMORY = "512MB"


def text_expr(path: str) -> str:
    """SQL for a string field's text (NULL unless it is a string)."""
    segments = check_field_path(path)
    lit = "'{" + ",".join(segments) + "}'"
    return f"(CASE WHEN jsonb_typeof(doc #> {lit}) = 'string' THEN doc #>> {lit} END)"


def tsvector_expr(path: str) -> str:
    """The generated tsvector of a search field: runs of letters and digits, lower-cased."""
    return (
        f"to_tsvector('simple'::regconfig, "
        f"regexp_replace(coalesce({text_expr(path)}, ''), '[\\W_]+', ' ', 'g'))"
    )


def _comment(definition: dict[str, Any]) -> str:
    return "convect:" + orjson.dumps(definition, option=orjson.OPT_SORT_KEYS).decode()


def _search_def(s: SearchIndex) -> dict[str, Any]:
    return {"searchField": s.search_field}


def _vector_def(vi: VectorIndex) -> dict[str, Any]:
    return {"vectorField": vi.vector_field, "dimensions": vi.dimensions}


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def filter_index_name(table: str, filter_field: str) -> str:
    """The btree on a filter field's value."""
    return index_sql_name(table, f"$filter${filter_field}")


def _filter_fields(tdef: TableDefinition) -> list[str]:
    fields: set[str] = set()
    for s in tdef.search_indexes.values():
        fields.update(s.filter_fields)
    for vi in tdef.vector_indexes.values():
        fields.update(vi.filter_fields)
    covered = {f[0] for f in tdef.indexes.values() if f}
    return sorted(fields - covered)


def _conc(concurrently: bool) -> str:
    return "CONCURRENTLY " if concurrently else ""


def search_index_sql(table: str, index: str, concurrently: bool) -> str:
    """CREATE INDEX (GIN) of a search index's tsvector column."""
    return (
        f'CREATE INDEX {_conc(concurrently)}IF NOT EXISTS "{index_sql_name(table, index)}" '
        f'ON {table_ref(table)} USING gin ("{ts_column(index)}")'
    )


def vector_index_sql(table: str, index: str, concurrently: bool) -> str:
    """CREATE INDEX (HNSW, cosine) of a vector index's column."""
    return (
        f'CREATE INDEX {_conc(concurrently)}IF NOT EXISTS "{index_sql_name(table, index)}" '
        f'ON {table_ref(table)} USING hnsw ("{vector_column(index)}" vector_cosine_ops)'
    )


def filter_index_sql(table: str, filter_field: str, concurrently: bool) -> str:
    """CREATE INDEX on a filter field's value."""
    return (
        f'CREATE INDEX {_conc(concurrently)}IF NOT EXISTS "{filter_index_name(table, filter_field)}" '
        f"ON {table_ref(table)} ({key_sql(filter_field)})"
    )


def _add_ts_sql(table: str, index: str, s: SearchIndex) -> list[str]:
    col = ts_column(index)
    return [
        f'ALTER TABLE {table_ref(table)} ADD COLUMN IF NOT EXISTS "{col}" tsvector '
        f"GENERATED ALWAYS AS ({tsvector_expr(s.search_field)}) STORED",
        f'COMMENT ON COLUMN {table_ref(table)}."{col}" IS {_quote_literal(_comment(_search_def(s)))}',
    ]


def _add_vector_sql(table: str, index: str, vi: VectorIndex) -> list[str]:
    col = vector_column(index)
    return [
        f'ALTER TABLE {table_ref(table)} ADD COLUMN IF NOT EXISTS "{col}" '
        f"vector({int(vi.dimensions)})",
        f'COMMENT ON COLUMN {table_ref(table)}."{col}" IS {_quote_literal(_comment(_vector_def(vi)))}',
    ]


def table_ddl(table: str, tdef: TableDefinition | None) -> list[str]:
    """Statements adding the derived columns and indexes to a new (empty) table."""
    if tdef is None:
        return []
    out: list[str] = []
    for index, s in sorted(tdef.search_indexes.items()):
        out += _add_ts_sql(table, index, s)
        out.append(search_index_sql(table, index, concurrently=False))
    for index, vi in sorted(tdef.vector_indexes.items()):
        out += _add_vector_sql(table, index, vi)
        out.append(vector_index_sql(table, index, concurrently=False))
    for f in _filter_fields(tdef):
        out.append(filter_index_sql(table, f, concurrently=False))
    return out


def wanted_indexes(schema: SchemaDefinition | None) -> set[str]:
    """PostgreSQL names of every search, vector and filter index the schema implies."""
    names: set[str] = set()
    if schema is None:
        return names
    for table, tdef in schema.tables.items():
        for index in [*tdef.search_indexes, *tdef.vector_indexes]:
            names.add(index_sql_name(table, index))
        for f in _filter_fields(tdef):
            names.add(filter_index_name(table, f))
    return names


def index_statements(schema: SchemaDefinition | None) -> dict[str, str]:
    """CREATE INDEX CONCURRENTLY of every search and vector index, by PostgreSQL name."""
    out: dict[str, str] = {}
    if schema is None:
        return out
    for table, tdef in schema.tables.items():
        for index in tdef.search_indexes:
            out[index_sql_name(table, index)] = search_index_sql(table, index, True)
        for index in tdef.vector_indexes:
            out[index_sql_name(table, index)] = vector_index_sql(table, index, True)
    return out


# ---------------------------------------------------------------- deploy


@dataclass
class Plan:
    """What a deploy changes in existing tables' derived columns."""

    drop: list[tuple[str, str]] = field(default_factory=list)  # (table, column)
    add_search: list[tuple[str, str, SearchIndex]] = field(default_factory=list)
    add_vector: list[tuple[str, str, VectorIndex]] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)


async def _derived_columns(conn: asyncpg.Connection, table: str) -> dict[str, str | None]:
    rows = await conn.fetch(
        "SELECT a.attname, col_description(a.attrelid, a.attnum) AS comment "
        "FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 "
        "AND NOT a.attisdropped AND (a.attname LIKE 'ts\\_\\_%' OR a.attname LIKE 'vec\\_\\_%')",
        table_ref(table),
    )
    return {r["attname"]: r["comment"] for r in rows}


async def plan(
    conn: asyncpg.Connection,
    schema: SchemaDefinition | None,
    existing_tables: set[str],
    problems: list[str],
) -> Plan:
    """Compare derived columns with the schema; check documents a new vector column needs."""
    out = Plan()
    if schema is None:
        return out
    for table in sorted(set(schema.tables) & existing_tables):
        tdef = schema.tables[table]
        have = await _derived_columns(conn, table)
        want: dict[str, str] = {}
        for index, s in tdef.search_indexes.items():
            col = ts_column(index)
            want[col] = _comment(_search_def(s))
            if have.get(col) != want[col]:
                out.add_search.append((table, index, s))
        for index, vi in tdef.vector_indexes.items():
            col = vector_column(index)
            want[col] = _comment(_vector_def(vi))
            if have.get(col) != want[col]:
                out.add_vector.append((table, index, vi))
                await _check_vectors(conn, table, index, vi, problems)
        for col, comment in sorted(have.items()):
            if want.get(col) != comment:
                out.drop.append((table, col))
        out.tables.append(table)
    return out


async def _check_vectors(
    conn: asyncpg.Connection, table: str, index: str, vi: VectorIndex, problems: list[str]
) -> None:
    bad = 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in conn.cursor(f"SELECT id, doc FROM {table_ref(table)}", prefetch=500):
            try:
                doc_vector(orjson.loads(row["doc"]), table, index, vi)
            except ValueError as exc:
                bad += 1
                if bad <= MAX_REPORTED:
                    problems.append(f"{table} document {row['id']}: {exc}")
    if bad > MAX_REPORTED:
        problems.append(f"{table}: {bad - MAX_REPORTED} more documents have invalid vectors")


async def _backfill_vectors(
    conn: asyncpg.Connection, table: str, index: str, vi: VectorIndex
) -> int:
    """Fill a new vector column from the documents; invalid vectors stay unindexed."""
    col = vector_column(index)
    filled = 0
    last = ""
    while True:
        rows = await conn.fetch(
            f"SELECT id, doc FROM {table_ref(table)} WHERE id > $1 ORDER BY id LIMIT $2",
            last,
            BACKFILL_BATCH,
        )
        if not rows:
            return filled
        last = rows[-1]["id"]
        ids: list[str] = []
        values: list[str] = []
        for r in rows:
            try:
                text = doc_vector(orjson.loads(r["doc"]), table, index, vi)
            except ValueError:
                continue  # refused by the plan unless --force: left out of the index
            if text is not None:
                ids.append(r["id"])
                values.append(text)
        if ids:
            await conn.execute(
                f'UPDATE {table_ref(table)} t SET "{col}" = v.value::vector '
                "FROM unnest($1::text[], $2::text[]) AS v(id, value) WHERE t.id = v.id",
                ids,
                values,
            )
            filled += len(ids)


async def apply(
    conn: asyncpg.Connection,
    schema: SchemaDefinition | None,
    todo: Plan,
    say: Callable[[str], Any],
    created: list[str],
    dropped: list[str],
    staged: Collection[str] = (),
    hold: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """Rebuild changed derived columns of existing tables; create missing indexes (not
    the `staged` ones: the background builder builds those). `hold` is awaited with a
    table's name before altering it."""
    if schema is None:
        return

    async def altering(table: str) -> None:
        if hold is not None:
            await hold(table)

    for table, col in todo.drop:
        await altering(table)
        say(f"dropping derived column {table}.{col}")
        await conn.execute(f'ALTER TABLE {table_ref(table)} DROP COLUMN IF EXISTS "{col}"')
        dropped.append(f"{table}.{col}")
    for table, index, s in todo.add_search:
        await altering(table)
        say(f"building search index {table}.{index}")
        async with conn.transaction():
            for stmt in _add_ts_sql(table, index, s):
                await conn.execute(stmt)
    for table, index, vi in todo.add_vector:
        await altering(table)
        say(f"building vector index {table}.{index}")
        async with conn.transaction():
            for stmt in _add_vector_sql(table, index, vi):
                await conn.execute(stmt)
        n = await _backfill_vectors(conn, table, index, vi)
        say(f"  {n} vectors")
    await conn.execute(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    try:
        for table in todo.tables:
            tdef = schema.tables[table]
            existing = {
                r["indexname"]
                for r in await conn.fetch(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = 'docs' AND tablename = $1",
                    table,
                )
            }
            stmts: list[tuple[str, str, str]] = []
            for index in sorted(tdef.search_indexes):
                sql = search_index_sql(table, index, True)
                stmts.append((index_sql_name(table, index), sql, f"{table}.{index} (search)"))
            for index in sorted(tdef.vector_indexes):
                sql = vector_index_sql(table, index, True)
                stmts.append((index_sql_name(table, index), sql, f"{table}.{index} (vector)"))
            for f in _filter_fields(tdef):
                sql = filter_index_sql(table, f, True)
                stmts.append((filter_index_name(table, f), sql, f"{table}.{f} (filter field)"))
            for name, stmt, label in stmts:
                if name in existing or name in staged:
                    continue
                await altering(table)
                say(f"creating index {label} (concurrently)")
                await conn.execute(stmt)
                created.append(label)
    finally:
        await conn.execute("RESET maintenance_work_mem")


__all__ = [
    "TS_PREFIX",
    "VECTOR_PREFIX",
    "Plan",
    "apply",
    "index_statements",
    "plan",
    "table_ddl",
    "wanted_indexes",
]
