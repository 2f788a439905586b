"""`.paginate(opts)`: one page of a query, with cursors that stay valid under writes.

Pages are keyset ranges of the query's index order: a page starts after its cursor's
key and ends at its last row, so inserts elsewhere never shift a document into two
pages or out of all of them. With `endCursor` a page covers exactly up to that cursor
(as Convex's clients expect when they re-run or split a page). The page's range is
recorded in the read set, cut at both ends, so a live page re-runs only when a write
lands inside it.

Live pages need Convex's query journal: a re-run page must end where it ended, or an
insert or delete inside it would shift a document onto (or off) the next page. The
live-query engine calls `use_journal(tx, journal)` before re-running a query and keeps
`journal_of(tx)` after it (and sends it as the `journal` of `QueryUpdated`); the
journal is the page's end cursor, used as `endCursor` when the call gives none.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from app.db.catalog import Catalog
from app.db.cursor import START, Position, encode_cursor, fingerprint
from app.db.cursor import InvalidCursor as InvalidCursor
from app.db.keyset import (
    KeyColumn,
    after_expr,
    after_terms,
    check_key,
    key_columns,
    narrowed,
    order_sql,
)
from app.db.page import Page, decode, result, start_key
from app.db.query import QueryDefinitionError, QuerySpec
from app.db.readset import RangeRead, doc_key
from app.db.search_page import paginate_search
from app.db.sql import Params, filter_sql, range_where, table_ref
from app.db.transaction import MAX_READS, Tx


class PaginationError(QueryDefinitionError):
    """`paginate` was called with invalid options."""


def _limit(opts: dict[str, Any], name: str) -> int | None:
    value = opts.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 1
    ):
        raise PaginationError(f"`options.{name}` must be a positive number. Received `{value}`.")
    return int(value)


def _options(opts: Any) -> tuple[int, Any, Any, int | None, int | None]:
    if not isinstance(opts, dict):
        raise PaginationError(
            f"paginate takes {{'numItems': n, 'cursor': c}}, got {type(opts).__name__}"
        )
    num = opts.get("numItems")
    if (
        isinstance(num, bool)
        or not isinstance(num, int | float)
        or not math.isfinite(num)
        or num < 0
    ):
        raise PaginationError(f"`options.numItems` must be a positive number. Received `{num}`.")
    if num > MAX_READS:
        raise PaginationError(f"`options.numItems` must be at most {MAX_READS}. Received `{num}`.")
    cursor = opts.get("cursor")
    end_cursor = opts.get("endCursor")
    for name, value in (("cursor", cursor), ("endCursor", end_cursor)):
        if value is not None and not isinstance(value, str):
            raise PaginationError(f"`options.{name}` must be a string or null.")
    return (
        int(num),
        cursor,
        end_cursor,
        _limit(opts, "maximumRowsRead"),
        _limit(opts, "maximumBytesRead"),
    )


def _query_fingerprint(spec: QuerySpec) -> str:
    r = spec.range
    if spec.search is not None:
        s = spec.search
        return fingerprint("search", r.table, s.index, s.text, [list(f) for f in s.filters])
    return fingerprint("index", r.table, r.index, r.order)


def _load(text: str | bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(text)
    return doc


async def paginate(tx: Tx, catalog: Catalog, spec: QuerySpec, opts: Any) -> dict[str, Any]:
    """One page: `{"page", "isDone", "continueCursor", "splitCursor", "pageStatus"}`.

    Reads through `tx`; cursors are signed with `catalog.cursor_key`.
    """
    num, cursor, end_cursor, max_rows, max_bytes = _options(opts)
    fp = _query_fingerprint(spec)
    if end_cursor is None and not tx.page_journal_used:
        end_cursor = tx.page_journal
    tx.page_journal_used = True
    if spec.search is not None:
        page = await paginate_search(tx, catalog, spec, fp, num, cursor, end_cursor)
    else:
        page = await _paginate_index(
            tx, catalog, spec, fp, num, cursor, end_cursor, (max_rows, max_bytes)
        )
    tx.page_journal = page["continueCursor"]
    return page


def use_journal(tx: Tx, journal: str | None) -> None:
    """Before a live re-run: hand the query the journal of its previous run (or the
    client's, from `ModifyQuerySet` Add), so its page ends where it ended."""
    tx.page_journal = journal


def journal_of(tx: Tx) -> str | None:
    """After a run: the journal to keep with the query and send in `QueryUpdated`
    (None when the query did not paginate)."""
    return tx.page_journal


async def _paginate_index(
    tx: Tx,
    catalog: Catalog,
    spec: QuerySpec,
    fp: str,
    num: int,
    cursor: str | None,
    end_cursor: str | None,
    limits: tuple[int | None, int | None],
) -> dict[str, Any]:
    r = spec.range
    cols = key_columns(r.fields)
    key = catalog.cursor_key
    start = decode(key, cursor, fp, len(cols), lambda k: check_key(cols, k))
    end = decode(key, end_cursor, fp, len(cols), lambda k: check_key(cols, k))
    if end_cursor is not None and end is None:
        raise InvalidCursor("an end cursor cannot be the start of the query")
    if not catalog.exists(r.table):
        await catalog.load()
    page = Page()
    if (start is not None and start.is_end) or not catalog.exists(r.table):
        page.exhausted = True
    else:
        await _read(tx, spec, cols, start, end, num, limits, page)
    read_range = narrowed(r, start.key) if start is not None and start.key else r
    if end is not None and end.key is not None and not page.cut:
        tx.read_set.ranges.append(RangeRead(read_range, end.key))
    elif page.exhausted or (page.last_key is None and start is None and end is None):
        tx.read_set.ranges.append(RangeRead(read_range))
    else:
        tx.read_set.ranges.append(RangeRead(read_range, page.last_key or start_key(start)))
    for d in page.docs:
        tx.cache.setdefault(d["_id"], d)
    here = cursor if start is not None else encode_cursor(key, START, fp)
    return result(key, page, fp, num, end, end_cursor, here)


def _select(
    spec: QuerySpec,
    cols: list[KeyColumn],
    after: tuple[Any, ...] | None,
    limit: int,
    scan: bool,
    end_key: tuple[Any, ...] | None,
    params: Params,
) -> str:
    """One statement reading up to `limit` rows after `after` in the query's order."""
    r = spec.range
    desc = r.order == "desc"
    base = range_where(r, params)
    extra = []
    if spec.filter is not None:
        cond = filter_sql(spec.filter, params)
        if scan:
            extra.append(f"{cond} AS keep")
        else:
            base.append(cond)
    if end_key is not None:
        extra.append(f"NOT {after_expr(cols, end_key, desc, params)} AS within")
    keys = [f"{c.sql} AS k{i}" for i, c in enumerate(cols)]
    select = ", ".join(["doc", *extra, *keys])
    terms: list[str | None] = (
        [None] if after is None else list(after_terms(cols, after, len(r.eq), desc, params))
    )
    lim = params.add(limit)
    parts = []
    for term in terms:
        where = [*base, term] if term is not None else base
        parts.append(
            f"SELECT {select} FROM {table_ref(r.table)}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {order_sql(cols, desc)} LIMIT {lim}"
        )
    if len(parts) == 1:
        return parts[0]
    union = " UNION ALL ".join(f"({p})" for p in parts)
    return f"SELECT * FROM ({union}) s ORDER BY {order_sql(cols, desc, 'k')} LIMIT {lim}"


async def _read(
    tx: Tx,
    spec: QuerySpec,
    cols: list[KeyColumn],
    start: Position | None,
    end: Position | None,
    num: int,
    limits: tuple[int | None, int | None],
    page: Page,
) -> None:
    """Fill `page`: rows after `start` until `num` documents, the end cursor or a limit.

    `limits` are `maximumRowsRead` and `maximumBytesRead`. As in Convex, the bytes limit
    is checked before each row (so a page always makes progress) and counts the documents
    the range yields; both are ignored when the page runs to an end cursor (only the
    transaction's read limit cuts such a page, asking the client to split it).
    """
    max_rows, max_bytes = limits
    fields = spec.range.fields
    bounded = end is not None  # the page runs to its end cursor, whatever `num` says
    if max_rows is not None:  # Convex's soft limit: past 3/4 of it a split is recommended
        page.split_rows = min(page.split_rows, max_rows * 3 // 4)
    if bounded:
        max_rows = None  # as in Convex: a page with an end cursor reads its whole range
    scan = max_rows is not None and spec.filter is not None
    limit_rows = max(0, MAX_READS - tx.reads)
    if max_rows is not None:
        limit_rows = min(limit_rows, max_rows)
    after = start_key(start)
    end_key = end.key if end is not None else None
    byte_budget = max_bytes if not bounded else None

    def over_bytes() -> bool:
        if byte_budget is not None and page.bytes_read >= byte_budget:
            page.bytes_limited = True
        return page.bytes_limited

    while True:
        if not bounded and len(page.docs) >= num:
            return
        if over_bytes():
            return
        room = limit_rows - page.scanned
        if room <= 0:
            page.cut = bounded
            return
        if bounded:
            want = min(room, max(num, 16) + 1)
        elif scan:
            want = min(room, max(2 * (num - len(page.docs)), 64))
        else:
            want = min(room, num - len(page.docs))
        params = Params()
        sql = _select(spec, cols, after, want, scan, end_key, params)
        rows = await tx.fetch(sql, *params.values)
        for row in rows:
            if end_key is not None and not row["within"]:
                return
            if over_bytes():
                return
            text = row["doc"]
            page.bytes_read += len(text)
            doc = _load(text)
            key = doc_key(doc, fields)
            page.scanned += 1
            page.last_key = key
            if not scan or row["keep"]:
                page.docs.append(doc)
                page.keys.append(key)
                tx.count_reads(1)
            if not bounded and len(page.docs) >= num:
                return
        if over_bytes():
            return
        if len(rows) < want:
            page.exhausted = True
            return
        after = page.last_key
