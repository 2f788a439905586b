"""Full-text search on search indexes, and the write hook for derived index columns.

A search index `search_body` on `messages.body` is a generated column
`ts__search_body tsvector` (PostgreSQL keeps it current on every write) with a GIN
index. `.with_search_index("search_body", lambda q: q.search("body", text).eq(...))`
finds documents containing any of the text's terms, the last term as a prefix
(type-ahead), ranked by `ts_rank` normalised by document length (more matching terms
and occurrences first, shorter documents first; ties: newest first), at most 1,024 of
them. Terms are runs of letters and digits, compared lower-cased, on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from app.db.catalog import Catalog
from app.db.derived import TS_PREFIX, ts_column
from app.db.query import (
    BY_CREATION_TIME,
    IndexStagedError,
    QueryDefinitionError,
    QuerySpec,
    SearchSpec,
)
from app.db.sql import Params, filter_sql, key_sql, table_ref
from app.db.transaction import Tx
from app.values import encode_value

__all__ = [
    "MAX_RESULTS",
    "SEARCH_ORDER",
    "TS_PREFIX",
    "SearchFilterBuilder",
    "build_search",
    "check_terms",
    "run_search",
    "search_source",
    "tokenize",
    "ts_column",
    "tsquery_text",
]

TS_CONFIG = "simple"
MAX_RESULTS = 1024
MAX_TERMS = 16
MAX_SEARCH_TEXT = 32 * 1024
_TERM_RE = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """The terms of a search text: runs of letters and digits, lower-cased, in order."""
    return _TERM_RE.findall(text.lower())


def tsquery_text(terms: list[str]) -> str:
    """A tsquery matching any term, the last one as a prefix."""
    quoted = [f"'{t}'" for t in terms]  # terms hold letters and digits only
    quoted[-1] += ":*"
    return " | ".join(quoted)


class SearchFilterBuilder:
    """The `q` of `with_search_index`: one `q.search(field, text)` and `q.eq(field, value)`s."""

    def __init__(self, table: str, index: str, search_field: str, filter_fields: tuple[str, ...]):
        self._where = f"search index {table}.{index}"
        self._search_field = search_field
        self._filter_fields = filter_fields
        self.text: str | None = None
        self.filters: list[tuple[str, Any]] = []

    def search(self, field: str, text: str) -> SearchFilterBuilder:
        """Documents whose `field` contains the terms of `text` (the index's search field)."""
        if self.text is not None:
            raise QueryDefinitionError(f"{self._where}: q.search() may be called only once")
        if field != self._search_field:
            raise QueryDefinitionError(
                f"{self._where}: q.search() takes its search field {self._search_field!r}, "
                f"not {field!r}"
            )
        if not isinstance(text, str):
            raise QueryDefinitionError(
                f"{self._where}: the search text must be a string, got {type(text).__name__}"
            )
        if len(text) > MAX_SEARCH_TEXT:
            raise QueryDefinitionError(
                f"{self._where}: the search text is too long ({len(text)} characters; "
                f"limit: {MAX_SEARCH_TEXT})"
            )
        self.text = text
        return self

    def eq(self, field: str, value: Any) -> SearchFilterBuilder:
        """Only documents whose filter field `field` equals `value`."""
        if field not in self._filter_fields:
            raise QueryDefinitionError(
                f"{self._where}: {field!r} is not a filter field "
                f"(filter fields: {list(self._filter_fields)})"
            )
        self.filters.append((field, encode_value(value)))
        return self


def build_search(
    catalog: Catalog, spec: QuerySpec, index: str, fn: Callable[[SearchFilterBuilder], object]
) -> QuerySpec:
    """Describe a `with_search_index` query."""
    table = spec.range.table
    tdef = catalog.definition(table)
    sidx = tdef.search_indexes.get(index) if tdef is not None else None
    if sidx is None:
        raise QueryDefinitionError(f"Search index {table}.{index} not found.")
    if tdef is not None and index in tdef.staged:
        raise IndexStagedError(table, index)
    if spec.filter is not None or spec.search is not None:
        raise QueryDefinitionError("with_search_index must come first, and only once")
    if spec.range.index != BY_CREATION_TIME or spec.range.eq or spec.range.order != "asc":
        raise QueryDefinitionError("A query can use only one index")
    builder = SearchFilterBuilder(table, index, sidx.search_field, sidx.filter_fields)
    result = fn(builder)
    if result is not builder:
        raise QueryDefinitionError(
            "The with_search_index lambda must return q.search(field, text)[.eq(...)]"
        )
    if builder.text is None:
        raise QueryDefinitionError(f"Search index {table}.{index}: call q.search(field, text)")
    search = SearchSpec(index, sidx.search_field, builder.text, tuple(builder.filters))
    return replace(spec, search=search)


def check_terms(search: SearchSpec) -> list[str]:
    """The terms of a search; a clear error past the limit."""
    terms = tokenize(search.text)
    if len(terms) > MAX_TERMS:
        raise QueryDefinitionError(
            f"Search text has {len(terms)} terms; a search takes at most {MAX_TERMS}"
        )
    return terms


def search_source(spec: QuerySpec, terms: list[str], params: Params) -> str:
    """A subquery of matching rows with their `rank` (filters applied)."""
    search = spec.search
    if search is None:
        raise QueryDefinitionError("not a search query")
    col = f'"{ts_column(search.index)}"'
    tsq = params.add(tsquery_text(terms)) + "::tsquery"
    where = [f"{col} @@ {tsq}"]
    for field, value in search.filters:
        where.append(f"{key_sql(field)} = {params.key(value)}")
    if spec.filter is not None:
        where.append(filter_sql(spec.filter, params))
    return (
        f"SELECT doc, creation_time, id, ts_rank({col}, {tsq}, 1) AS rank "
        f"FROM {table_ref(spec.range.table)} WHERE {' AND '.join(where)}"
    )


SEARCH_ORDER = "rank DESC, creation_time DESC, id DESC"


def _load(text: str | bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(text)
    return doc


async def run_search(
    tx: Tx, catalog: Catalog, spec: QuerySpec, limit: int | None
) -> list[dict[str, Any]]:
    """Run a full-text search query; any write to the table makes it stale."""
    table = spec.range.table
    tx.read_set.tables.add(table)
    if spec.search is None:
        raise QueryDefinitionError("not a search query")
    terms = check_terms(spec.search)
    if not terms:
        return []
    if not catalog.exists(table):
        await catalog.load()
        if not catalog.exists(table):
            return []
    params = Params()
    source = search_source(spec, terms, params)
    n = MAX_RESULTS if limit is None else min(limit, MAX_RESULTS)
    sql = f"SELECT doc FROM ({source}) s ORDER BY {SEARCH_ORDER} LIMIT {params.add(n)}"
    rows = await tx.fetch(sql, *params.values)
    docs = [_load(r["doc"]) for r in rows]
    tx.count_reads(len(docs))
    for d in docs:
        tx.cache.setdefault(d["_id"], d)
    return docs
