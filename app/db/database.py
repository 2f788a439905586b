"""`ctx.db`: the reader every function sees, the writer mutations see, and queries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import orjson

from app.db import ids
from app.db.catalog import Catalog
from app.db.errors import DocumentError, LimitError
from app.db.paginate import paginate
from app.db.query import (
    BY_CREATION_TIME,
    FilterBuilder,
    IndexRange,
    IndexRangeBuilder,
    QueryDefinitionError,
    QuerySpec,
    build_filter,
    build_range,
)
from app.db.readset import RangeRead, doc_key
from app.db.search import SearchFilterBuilder, build_search, run_search
from app.db.sql import (
    NUL_MESSAGE,
    Params,
    filter_sql,
    has_nul,
    order_by,
    range_where,
    table_ref,
)
from app.db.transaction import MAX_READS, Tx
from app.db.vector import vector_columns
from app.db.writes import DocumentWrites
from app.values import UNSET, check_document_fields, decode_value, encode_value

MAX_DOCUMENT_BYTES = 1024 * 1024


def _load(text: str | bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(text)
    return doc


class DatabaseReader:
    """Read documents: `get`, `query`, `normalize_id`, and `system` for system tables."""

    def __init__(self, tx: Tx, catalog: Catalog, *, system: bool = False) -> None:
        self._tx = tx
        self._catalog = catalog
        self._system = system

    @property
    def system(self) -> DatabaseReader:
        """Reads of the system tables `_storage` and `_scheduled_functions`."""
        return DatabaseReader(self._tx, self._catalog, system=True)

    def _check_table(self, table: object) -> str:
        name = ids.check_table_name(table, allow_system=True)
        if self._system and not ids.is_system_table(name):
            raise DocumentError(f"ctx.db.system only reads system tables, not {name!r}")
        if not self._system and ids.is_system_table(name):
            raise DocumentError(f"Use ctx.db.system to read the system table {name!r}")
        return name

    def normalize_id(self, table: str, value: object) -> str | None:
        """`value` if it is an id of `table`, else None."""
        self._check_table(table)
        return value if isinstance(value, str) and ids.is_id_for(value, table) else None

    async def _table_of(self, doc_id: object) -> str | None:
        if not isinstance(doc_id, str) or ids.id_number(doc_id) is None:
            raise DocumentError(f"Invalid argument: {doc_id!r} is not a valid document id")
        table = await self._catalog.resolve_id(doc_id)
        if table is not None and ids.is_system_table(table) != self._system:
            if ids.is_system_table(table):
                raise DocumentError("Use ctx.db.system.get for ids of system tables")
            raise DocumentError("ctx.db.system.get only reads ids of system tables")
        return table

    async def get_encoded(self, doc_id: str) -> dict[str, Any] | None:
        """The stored (wire-encoded) document with this id, or None."""
        table = await self._table_of(doc_id)
        if table is None:
            return None
        return await self._read(table, doc_id)

    async def _read(self, table: str, doc_id: str) -> dict[str, Any] | None:
        """`get_encoded` of an id already known to be of `table`."""
        self._tx.read_set.ids.add((table, doc_id))
        if doc_id in self._tx.cache:
            return self._tx.cache[doc_id]
        # Not written here (writes are cached), so held-back writes cannot change this row.
        if self._tx.optimistic:
            row = await self._tx.read_version(
                f"SELECT doc, xmin::text AS v FROM {table_ref(table)} WHERE id = $1", doc_id
            )
        else:
            row = await self._tx.fetchrow(
                f"SELECT doc FROM {table_ref(table)} WHERE id = $1", doc_id, flush=False
            )
        doc = _load(row["doc"]) if row is not None else None
        self._tx.count_reads(1)
        self._tx.cache[doc_id] = doc
        return doc

    async def get(self, *args: Any) -> dict[str, Any] | None:
        """The document with this id, or None: `get(id)` or `get(table, id)`."""
        doc_id = await self._id_arg("get", args, 0)
        doc = await self.get_encoded(doc_id)
        return decode_value(doc) if doc is not None else None

    async def _id_arg(self, op: str, args: tuple[Any, ...], rest: int) -> Any:
        """The id of `op(id, ...)` or `op(table, id, ...)` (Convex's two forms), the table
        checked against the id: `rest` is how many arguments follow the id."""
        if len(args) == rest + 1:
            return args[0]
        if len(args) != rest + 2:
            forms = ("(id)", "(table, id)") if rest == 0 else ("(id, value)", "(table, id, value)")
            raise TypeError(f"db.{op} takes {forms[0]} or {forms[1]}, got {len(args)} arguments")
        table, doc_id = args[0], args[1]
        name = self._check_table(table)
        if not isinstance(doc_id, str) or ids.id_number(doc_id) is None:
            raise DocumentError(
                f"Invalid argument `id` for `db.{op}`: {doc_id!r} is not a valid document id"
            )
        if not ids.is_id_for(doc_id, name):
            actual = await self._catalog.resolve_id(doc_id)
            where = f"table {actual!r}" if actual is not None else "another table"
            raise DocumentError(
                f"Invalid argument `id` for `db.{op}`: the id {doc_id} belongs to {where}, "
                f"not to table {name!r}"
            )
        return doc_id

    def query(self, table: str) -> Query:
        """Start a query on `table` (by creation time, ascending, until refined)."""
        name = self._check_table(table)
        fields = self._catalog.index_fields(name, BY_CREATION_TIME)
        return Query(self, QuerySpec(IndexRange(name, BY_CREATION_TIME, fields)))

    # ------------------------------------------------------------- execution

    def _compile(self, spec: QuerySpec, limit: int | None) -> tuple[str, list[Any]]:
        params = Params()
        where = range_where(spec.range, params)
        if spec.filter is not None:
            where.append(filter_sql(spec.filter, params))
        sql = f"SELECT doc FROM {table_ref(spec.range.table)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY " + order_by(spec.range)
        if limit is not None:
            sql += " LIMIT " + params.add(limit)
        return sql, params.values

    async def run_spec(self, spec: QuerySpec, limit: int | None) -> list[dict[str, Any]]:
        """Run a query description; record what it read; return encoded documents."""
        if spec.search is not None:
            return await run_search(self._tx, self._catalog, spec, limit)
        table = spec.range.table
        if not self._catalog.exists(table):
            await self._catalog.load()
        if not self._catalog.exists(table):
            self._tx.read_set.ranges.append(RangeRead(spec.range))
            return []
        # Never fetch more than the read limit allows (+1 to detect going over it).
        cap = self._remaining_reads() + 1
        fetch_limit = cap if limit is None else min(limit, cap)
        sql, args = self._compile(spec, fetch_limit)
        rows = await self._tx.fetch(sql, *args)
        docs = [_load(r["doc"]) for r in rows]
        self._tx.count_reads(len(docs))
        last_key = None
        if limit is not None and len(docs) >= limit and docs:
            last_key = doc_key(docs[-1], spec.range.fields)
        self._tx.read_set.ranges.append(RangeRead(spec.range, last_key))
        for d in docs:
            self._tx.cache.setdefault(d["_id"], d)
        return docs

    async def count_spec(self, spec: QuerySpec) -> int:
        """How many documents a query description matches: one SQL `count` over its index
        range (and filter); the whole range goes into the read set, so a live count re-runs
        when a write enters or leaves it."""
        if spec.search is not None:
            raise QueryDefinitionError("count() is not available on a search query")
        table = spec.range.table
        self._tx.read_set.ranges.append(RangeRead(spec.range))
        if not self._catalog.exists(table):
            await self._catalog.load()
        if not self._catalog.exists(table):
            return 0
        params = Params()
        where = range_where(spec.range, params)
        if spec.filter is not None:
            where.append(filter_sql(spec.filter, params))
        sql = f"SELECT count(*) AS n FROM {table_ref(table)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        row = await self._tx.fetchrow(sql, *params.values)
        return int(row["n"]) if row is not None else 0

    def _remaining_reads(self) -> int:
        return max(0, MAX_READS - self._tx.reads)


class DatabaseWriter(DatabaseReader):
    """`ctx.db` in mutations: reads plus `insert`, `patch`, `replace`, `delete`."""

    @property
    def system(self) -> DatabaseReader:
        """Reads of the system tables (writes to them go through the scheduler and storage)."""
        return DatabaseReader(self._tx, self._catalog, system=True)

    def _validate(self, table: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Check a user document against the schema; return it normalized."""
        schema = self._catalog.schema
        if schema is None or not schema.schema_validation:
            return doc
        table_def = schema.tables.get(table)
        if table_def is None:
            raise DocumentError(
                f"Failed to insert or update a document in table {table!r} because it "
                "does not match the schema: the table is not in the schema."
            )
        if table_def.validator is None:
            return doc
        user = {k: v for k, v in doc.items() if k not in ("_id", "_creationTime")}
        try:
            checked = table_def.validator.validate(user, "", id_table=ids.id_table)
        except ValueError as exc:
            raise DocumentError(
                f"Failed to insert or update a document in table {table!r} because it does "
                f"not match the schema: {exc}"
            ) from None
        return dict(checked)

    def _encode(self, table: str, doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The document as stored (wire-encoded) and its JSON text, checked for size and NUL."""
        encoded: dict[str, Any] = encode_value(doc)
        text = orjson.dumps(encoded)
        if len(text) > MAX_DOCUMENT_BYTES:
            raise LimitError(
                f"Document is too large for table {table!r} ({len(text)} bytes; "
                f"limit: {MAX_DOCUMENT_BYTES} bytes)."
            )
        if has_nul(text):
            raise DocumentError(f"Invalid document for table {table!r}: {NUL_MESSAGE}.")
        return encoded, text.decode()

    async def _write_row(
        self, table: str, doc_id: str, old: dict[str, Any] | None, new: dict[str, Any], text: str
    ) -> None:
        """Hold the write back: it is sent with the next statement or the commit-log row."""
        # Vector columns are written beside the document (tsvector columns are generated).
        extra_cols, extra_vals = vector_columns(self._catalog, table, new)
        self._tx.defer(DocumentWrites.key, DocumentWrites).put(
            table,
            doc_id,
            insert=old is None,
            creation_time=new["_creationTime"],
            text=text,
            extra_cols=extra_cols,
            extra_vals=extra_vals,
        )

    async def insert(self, table: str, doc: dict[str, Any]) -> str:
        """Insert a document; returns its new id."""
        name = ids.check_table_name(table)
        if not isinstance(doc, dict):
            raise DocumentError(f"insert takes a dict, got {type(doc).__name__}")
        check_document_fields(doc)
        doc = self._validate(name, {k: v for k, v in doc.items() if v is not UNSET})
        doc_id = ids.new_id(name)
        full = {**doc, "_id": doc_id, "_creationTime": self._catalog.clock.next()}
        encoded, text = self._encode(name, full)
        await self._catalog.ensure(name)
        await self._write_row(name, doc_id, None, encoded, text)
        self._tx.record_write(name, doc_id, None, encoded)
        return doc_id

    async def _existing(self, doc_id: str, op: str) -> tuple[str, dict[str, Any]]:
        table = await self._table_of(doc_id)
        if table is None:
            raise DocumentError(f"{op} on nonexistent document ID {doc_id}")
        doc = await self._read(table, doc_id)
        if doc is None:
            raise DocumentError(f"{op} on nonexistent document ID {doc_id}")
        return table, doc

    def _check_system_fields(
        self, doc_id: str, old: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        if "_id" in fields and fields["_id"] != doc_id:
            raise DocumentError("Cannot change a document's _id")
        if "_creationTime" in fields and fields["_creationTime"] != decode_value(
            old["_creationTime"]
        ):
            raise DocumentError("Cannot change a document's _creationTime")

    async def patch(self, *args: Any) -> None:
        """Shallow-merge fields into a document (`UNSET` removes a field):
        `patch(id, fields)` or `patch(table, id, fields)`."""
        doc_id = await self._id_arg("patch", args, 1)
        fields = args[-1]
        if not isinstance(fields, dict):
            raise DocumentError(f"patch takes a dict, got {type(fields).__name__}")
        table, old = await self._existing(doc_id, "Update")
        self._check_system_fields(doc_id, old, fields)
        user_fields = {k: v for k, v in fields.items() if k not in ("_id", "_creationTime")}
        check_document_fields(user_fields)
        current = decode_value(old)
        for k, v in user_fields.items():
            if v is UNSET:
                current.pop(k, None)
            else:
                current[k] = v
        await self._store(table, doc_id, old, current)

    async def replace(self, *args: Any) -> None:
        """Replace a document's fields, keeping its id and creation time:
        `replace(id, doc)` or `replace(table, id, doc)`."""
        doc_id = await self._id_arg("replace", args, 1)
        doc = args[-1]
        if not isinstance(doc, dict):
            raise DocumentError(f"replace takes a dict, got {type(doc).__name__}")
        table, old = await self._existing(doc_id, "Replace")
        self._check_system_fields(doc_id, old, doc)
        user = {
            k: v for k, v in doc.items() if k not in ("_id", "_creationTime") and v is not UNSET
        }
        check_document_fields(user)
        current = {**user, "_id": doc_id, "_creationTime": decode_value(old["_creationTime"])}
        await self._store(table, doc_id, old, current)

    async def _store(
        self, table: str, doc_id: str, old: dict[str, Any], current: dict[str, Any]
    ) -> None:
        system = {k: current.pop(k) for k in ("_id", "_creationTime")}
        current = self._validate(table, current)
        encoded, text = self._encode(table, {**current, **system})
        await self._write_row(table, doc_id, old, encoded, text)
        self._tx.record_write(table, doc_id, old, encoded)

    async def delete(self, *args: Any) -> None:
        """Delete a document: `delete(id)` or `delete(table, id)`."""
        doc_id = await self._id_arg("delete", args, 0)
        table = await self._table_of(doc_id)
        if table is None:
            raise DocumentError(f"Delete on nonexistent document ID {doc_id}")
        row = await self._tx.fetchrow(
            f"DELETE FROM {table_ref(table)} WHERE id = $1 RETURNING doc", doc_id
        )
        if row is None:
            raise DocumentError(f"Delete on nonexistent document ID {doc_id}")
        self._tx.record_write(table, doc_id, _load(row["doc"]), None)


class Query:
    """A query being built: `with_index`, `filter`, `order`, then a terminal method."""

    def __init__(self, db: DatabaseReader, spec: QuerySpec, *, ordered: bool = False) -> None:
        self._db = db
        self._spec = spec
        self._ordered = ordered

    @property
    def spec(self) -> QuerySpec:
        """The plain description of this query."""
        return self._spec

    def with_index(
        self, index: str, range_fn: Callable[[IndexRangeBuilder], Any] | None = None
    ) -> Query:
        """Read a range of `index`: equalities on a prefix of its fields, then one range."""
        if self._spec.filter is not None or self._ordered:
            raise QueryDefinitionError("with_index must come before filter and order")
        if self._spec.range.index != BY_CREATION_TIME or self._spec.range.eq:
            raise QueryDefinitionError("A query can use only one index")
        table = self._spec.range.table
        fields = self._db._catalog.index_fields(table, index)
        rng = build_range(table, index, fields, range_fn)
        return Query(self._db, replace(self._spec, range=rng))

    def with_search_index(
        self, index: str, search_fn: Callable[[SearchFilterBuilder], object]
    ) -> Query:
        """Full-text search on a search index (relevance order)."""
        spec = build_search(self._db._catalog, self._spec, index, search_fn)
        return Query(self._db, spec, ordered=True)

    def filter(self, fn: Callable[[FilterBuilder], Any]) -> Query:
        """Keep documents for which the expression is true (evaluated in PostgreSQL)."""
        expr = build_filter(fn)
        if self._spec.filter is not None:
            expr = FilterBuilder().and_(self._spec.filter, expr)
        return Query(self._db, replace(self._spec, filter=expr), ordered=self._ordered)

    def order(self, order: str) -> Query:
        """`"asc"` or `"desc"` along the index."""
        if self._ordered:
            raise QueryDefinitionError("order may be called once, and not on a search query")
        return Query(self._db, self._spec.with_order(order), ordered=True)

    async def _run(self, limit: int | None) -> list[dict[str, Any]]:
        return await self._db.run_spec(self._spec, limit)

    async def collect(self) -> list[dict[str, Any]]:
        """All matching documents."""
        return [decode_value(d) for d in await self._run(None)]

    async def take(self, n: int) -> list[dict[str, Any]]:
        """The first `n` matching documents."""
        if isinstance(n, bool) or not isinstance(n, int | float) or n < 0 or int(n) != n:
            raise QueryDefinitionError(f"take() takes a non-negative integer, got {n!r}")
        if n == 0:
            return []
        return [decode_value(d) for d in await self._run(int(n))]

    async def first(self) -> dict[str, Any] | None:
        """The first matching document, or None."""
        docs = await self._run(1)
        return decode_value(docs[0]) if docs else None

    async def unique(self) -> dict[str, Any] | None:
        """The only matching document, None if there is none; an error if there are more."""
        docs = await self._run(2)
        if len(docs) > 1:
            raise DocumentError(
                f"unique() found more than one document in {self._spec.range.table!r}"
            )
        return decode_value(docs[0]) if docs else None

    async def count(self) -> int:
        """How many documents match, counted by PostgreSQL without fetching them (one SQL
        `count` over the index range; a filter is evaluated on every row of the range).
        Live: a subscribed count updates when a write enters or leaves the range."""
        return await self._db.count_spec(self._spec)

    async def paginate(self, opts: dict[str, Any]) -> dict[str, Any]:
        """One page: `{"page", "isDone", "continueCursor"}` (see app.db.paginate)."""
        return await paginate(self._db._tx, self._db._catalog, self._spec, opts)

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        for doc in await self._run(None):
            yield decode_value(doc)
