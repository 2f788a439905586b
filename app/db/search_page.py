"""`.paginate()` on a full-text search: pages in relevance order, keyed by (rank, time, id).

A document's rank depends only on the document and the search text, so the key
(rank, creation time, id) orders a search's results stably and a cursor can hold it.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.db.catalog import Catalog
from app.db.cursor import START, InvalidCursor, encode_cursor
from app.db.page import Page, decode, result
from app.db.query import QuerySpec
from app.db.search import MAX_RESULTS, SEARCH_ORDER, check_terms, search_source
from app.db.sql import Params
from app.db.transaction import Tx

_KEY = "(rank, creation_time, id)"


def _check(key: tuple[Any, ...]) -> bool:
    rank, ct, doc_id = key
    return all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in (rank, ct)
    ) and isinstance(doc_id, str)


def _key_sql(key: tuple[Any, ...], params: Params) -> str:
    rank, ct, doc_id = key
    return (
        f"({params.add(float(rank))}::real, {params.add(float(ct))}::float8, "
        f"{params.add(doc_id)}::text)"
    )


async def paginate_search(
    tx: Tx,
    catalog: Catalog,
    spec: QuerySpec,
    fp: str,
    num: int,
    cursor: str | None,
    end_cursor: str | None,
) -> dict[str, Any]:
    """One page of a search query (at most 1,024 results per page)."""
    search = spec.search
    if search is None:
        raise ValueError("not a search query")
    key = catalog.cursor_key
    start = decode(key, cursor, fp, 3, _check)
    end = decode(key, end_cursor, fp, 3, _check)
    if end_cursor is not None and end is None:
        raise InvalidCursor("an end cursor cannot be the start of the query")
    table = spec.range.table
    tx.read_set.tables.add(table)
    terms = check_terms(search)
    page = Page()
    if not catalog.exists(table):
        await catalog.load()
    if not terms or (start is not None and start.is_end) or not catalog.exists(table):
        page.exhausted = True
    else:
        params = Params()
        source = search_source(spec, terms, params)
        where = []
        if start is not None and start.key:
            where.append(f"{_KEY} < {_key_sql(start.key, params)}")
        if end is not None and end.key is not None:
            where.append(f"{_KEY} >= {_key_sql(end.key, params)}")
        limit = MAX_RESULTS if end is not None else min(num, MAX_RESULTS)
        sql = (
            f"SELECT doc, rank FROM ({source}) s"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {SEARCH_ORDER} LIMIT {params.add(limit)}"
        )
        rows = await tx.fetch(sql, *params.values) if limit > 0 else []
        for r in rows:
            doc: dict[str, Any] = orjson.loads(r["doc"])
            row_key = (float(r["rank"]), doc["_creationTime"], doc["_id"])
            page.docs.append(doc)
            page.keys.append(row_key)
            page.last_key = row_key
            tx.cache.setdefault(doc["_id"], doc)
        page.scanned = len(rows)
        tx.count_reads(len(rows))
        page.exhausted = len(rows) < limit and (end is None or end.is_end)
    here = cursor if start is not None else encode_cursor(key, START, fp)
    return result(key, page, fp, num, end, end_cursor, here)
