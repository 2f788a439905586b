"""Vector indexes: a pgvector column per index, filled on write, and `ctx.vector_search`.

A vector index `by_embedding` on table `documents` keeps `docs."documents".vec__by_embedding
vector(N)`, written beside the document on every insert and update, with an HNSW index
(cosine). `vector_search` finds the nearest documents by cosine similarity; equality
filters on the index's filter fields stay exact under selective filters: pgvector's
iterative index scan keeps reading the graph until enough rows pass the filter; a
filter that leaves at most 10,000 documents is answered exactly (the filter field has a
btree), and a search that still comes up short is answered exactly from the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db.catalog import Catalog
from app.db.derived import VECTOR_PREFIX, column_name, doc_vector, vector_column, vector_text
from app.db.errors import DocumentError
from app.db.query import IndexStagedError
from app.db.sql import Params, key_sql, table_ref
from app.schema.definition import VectorIndex
from app.values import encode_value

DEFAULT_LIMIT = 10
MAX_LIMIT = 256
EXACT_MAX = 10_000  # filtered searches over at most this many documents are exact


class VectorSearchError(ValueError):
    """A vector search was asked for wrongly (unknown index, bad vector, bad limit...)."""


def vector_columns(
    catalog: Catalog, table: str, doc: dict[str, Any]
) -> tuple[list[str], list[Any]]:
    """The vector columns of `table` and their values for a document being written."""
    tdef = catalog.definition(table)
    if tdef is None or not tdef.vector_indexes:
        return [], []
    names: list[str] = []
    values: list[Any] = []
    for index, vi in sorted(tdef.vector_indexes.items()):
        names.append(f'"{vector_column(index)}"')
        values.append(doc_vector(doc, table, index, vi))
    return names, values


# ---------------------------------------------------------------- filters


@dataclass(frozen=True)
class VectorEq:
    """`q.eq(field, value)` on a filter field; `value` wire-encoded."""

    field: str
    value: Any


@dataclass(frozen=True)
class VectorOr:
    """`q.or_(...)`: any of the expressions."""

    exprs: tuple[VectorEq | VectorOr, ...]


VectorFilter = VectorEq | VectorOr


class VectorFilterBuilder:
    """The `q` of a vector search's `filter`: `q.eq(field, value)` and `q.or_(...)`."""

    def __init__(self, filter_fields: tuple[str, ...]) -> None:
        self._fields = filter_fields

    def eq(self, field: str, value: Any) -> VectorEq:
        """The filter field equals `value`."""
        if field not in self._fields:
            raise VectorSearchError(
                f"Vector search filter: {field!r} is not a filter field of this index "
                f"(filter fields: {list(self._fields)})"
            )
        return VectorEq(field, encode_value(value))

    def or_(self, *exprs: VectorFilter) -> VectorOr:
        """Any of `exprs`."""
        for e in exprs:
            if not isinstance(e, VectorEq | VectorOr):
                raise VectorSearchError("q.or_() takes q.eq(...) or q.or_(...) expressions")
        return VectorOr(tuple(exprs))


def filter_sql(expr: VectorFilter, params: Params) -> str:
    """A WHERE clause for a vector filter (values are jsonb bind parameters)."""
    if isinstance(expr, VectorEq):
        return f"{key_sql(expr.field)} = {params.key(expr.value)}"
    if not expr.exprs:
        return "false"
    return "(" + " OR ".join(filter_sql(e, params) for e in expr.exprs) + ")"


# ---------------------------------------------------------------- search


@dataclass(frozen=True)
class VectorQuery:
    """A checked vector search: index, vector text, limit, filter."""

    table: str
    index: str
    vi: VectorIndex
    vector: str
    limit: int
    filter: VectorFilter | None


_QUERY_KEYS = frozenset({"vector", "limit", "filter"})


def check_query(catalog: Catalog, table: str, index: str, query: Any) -> VectorQuery:
    """Validate `ctx.vector_search(table, index, query)`'s arguments."""
    tdef = catalog.definition(table) if isinstance(table, str) else None
    vi = tdef.vector_indexes.get(index) if tdef is not None and isinstance(index, str) else None
    if vi is None:
        raise VectorSearchError(f"Vector index {table}.{index} not found in the schema.")
    if tdef is not None and index in tdef.staged:
        raise IndexStagedError(table, index)
    if not isinstance(query, dict):
        raise VectorSearchError("vector_search takes a dict: {'vector', 'limit', 'filter'}")
    unknown = set(query) - _QUERY_KEYS
    if unknown:
        raise VectorSearchError(f"vector_search: unknown option(s) {sorted(unknown)}")
    if "vector" not in query:
        raise VectorSearchError("vector_search: 'vector' is required")
    try:
        text = vector_text(query["vector"], vi.dimensions, "vector_search: 'vector'")
    except DocumentError as exc:
        raise VectorSearchError(str(exc)) from None
    if all(float(x) == 0.0 for x in query["vector"]):
        raise VectorSearchError("vector_search: 'vector' must not be all zeros (cosine)")
    limit = query.get("limit", DEFAULT_LIMIT)
    if limit is None:
        limit = DEFAULT_LIMIT
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int | float)
        or limit != limit
        or int(limit) != limit
        or not 1 <= limit <= MAX_LIMIT
    ):
        raise VectorSearchError(
            f"vector_search: 'limit' must be an integer from 1 to {MAX_LIMIT}, got {limit!r}"
        )
    filt = None
    fn = query.get("filter")
    if fn is not None:
        if not callable(fn):
            raise VectorSearchError("vector_search: 'filter' must be a function of q")
        filt = fn(VectorFilterBuilder(vi.filter_fields))
        if not isinstance(filt, VectorEq | VectorOr):
            raise VectorSearchError(
                "vector_search: 'filter' must return q.eq(field, value) or q.or_(...)"
            )
    return VectorQuery(table, index, vi, text, int(limit), filt)


def ef_search(limit: int) -> int:
    """HNSW candidate list size for a search returning `limit` results."""
    return min(1000, max(100, 2 * limit))


def count_sql(q: VectorQuery) -> tuple[str, list[Any]]:
    """How many indexed documents pass the filter, counted up to EXACT_MAX + 1."""
    params = Params()
    col = f'"{vector_column(q.index)}"'
    where = [f"{col} IS NOT NULL"]
    if q.filter is not None:
        where.append(filter_sql(q.filter, params))
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM {table_ref(q.table)} "
        f"WHERE {' AND '.join(where)} LIMIT {EXACT_MAX + 1}) s"
    )
    return sql, params.values


def search_sql(q: VectorQuery, exact: bool) -> tuple[str, list[Any]]:
    """The nearest-neighbour statement: HNSW (approximate) or `exact` (a full scan)."""
    params = Params()
    col = f'"{vector_column(q.index)}"'
    vec = params.add(q.vector) + "::vector"
    where = [f"{col} IS NOT NULL"]
    if q.filter is not None:
        where.append(filter_sql(q.filter, params))
    # `+ 0` keeps the planner from the (approximate) HNSW index for the exact pass.
    order = f"({col} <=> {vec}) + 0" if exact else f"{col} <=> {vec}"
    sql = (
        f"WITH nearest AS MATERIALIZED (SELECT id, {col} <=> {vec} AS distance "
        f"FROM {table_ref(q.table)} WHERE {' AND '.join(where)} "
        f"ORDER BY {order} LIMIT {int(q.limit)}) "  # a literal: keeps plans custom-fit
        "SELECT id, distance FROM nearest ORDER BY distance, id"
    )
    return sql, params.values


async def vector_search(
    pool: asyncpg.Pool, catalog: Catalog, table: str, index: str, query: dict[str, Any]
) -> list[dict[str, Any]]:
    """`ctx.vector_search`: `[{"_id", "_score"}]`, most similar first (score = cosine).

    Reads on a connection of `pool` (one read-only snapshot); `catalog` gives the schema's
    vector indexes and the existing tables.
    """
    q = check_query(catalog, table, index, query)
    if not catalog.exists(table):
        await catalog.load()
        if not catalog.exists(table):
            return []
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        await conn.execute(
            f"SET LOCAL hnsw.ef_search = {ef_search(q.limit)}; "
            "SET LOCAL hnsw.iterative_scan = relaxed_order"
        )
        exact = False
        if q.filter is not None:
            # A filter that leaves few documents is answered exactly (through the filter
            # field's btree): the graph cannot promise recall when the filter correlates
            # with where vectors lie.
            sql, args = count_sql(q)
            exact = await conn.fetchval(sql, *args) <= EXACT_MAX
        sql, args = search_sql(q, exact=exact)
        rows = await conn.fetch(sql, *args)
        if not exact and len(rows) < q.limit:
            sql, args = search_sql(q, exact=True)
            rows = await conn.fetch(sql, *args)
    return [{"_id": r["id"], "_score": 1.0 - float(r["distance"])} for r in rows]


__all__ = [
    "VECTOR_PREFIX",
    "VectorFilterBuilder",
    "VectorSearchError",
    "column_name",
    "doc_vector",
    "vector_column",
    "vector_columns",
    "vector_search",
]
