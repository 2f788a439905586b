"""Compile query descriptions to SQL. Every value is a bind parameter; names are checked.

Documents live in `docs."<table>"` as (`id`, `creation_time`, `doc jsonb`). An indexed
field `a.b` has the key column `"k:a.b"` = `convect_sort_key(doc -> 'a' -> 'b')`, ordered
as jsonb with a missing field first (stored generated, or filled by a trigger when a
deploy added it to a table that held documents: `app.db.key_fill`); `_creationTime` and `_id` are the columns. Indexes are
built on those columns rather than on expressions over `doc`, so that an update that
leaves every indexed value unchanged stays HOT (no new index entries, and no false
serialization conflicts on index pages). Filter field names are parameters.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from app.db.ids import check_table_name
from app.db.query import ARITHMETIC, Bound, Expr, Field, IndexRange, Literal, Op
from app.values import UNSET

_SEGMENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
MAX_INDEX_NAME = 63
# A \u0000 escape that is not itself an escaped backslash followed by "u0000".
_NUL_ESCAPE_RE = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")
NUL_MESSAGE = "strings cannot contain the NUL character (\\u0000) in stored documents or queries"


def has_nul(json_text: bytes) -> bool:
    """True when JSON text holds a string with a NUL character (PostgreSQL jsonb refuses it)."""
    return b"\\u0000" in json_text and _NUL_ESCAPE_RE.search(json_text) is not None


def table_ref(table: str) -> str:
    """The quoted SQL name of an app or system table."""
    check_table_name(table, allow_system=True)
    return f'docs."{table}"'


def check_field_path(path: str) -> tuple[str, ...]:
    """Split a dotted index field path, checking every segment."""
    segments = tuple(path.split("."))
    for seg in segments:
        if not _SEGMENT_RE.match(seg):
            raise ValueError(f"Invalid field name {path!r} in an index")
    return segments


KEY_PREFIX = "k:"


def key_expr(field: str, doc: str = "doc") -> str:
    """The jsonb expression over `doc` that an indexed field's column is generated from."""
    segments = check_field_path(field)
    return f"({doc}" + "".join(f" -> '{seg}'" for seg in segments) + ")"


def key_column(field: str) -> str:
    """The (unquoted) name of an indexed field's generated column, at most 63 bytes."""
    check_field_path(field)
    return _pg_name(KEY_PREFIX + field, "~")


SORT_KEY = "convect_sort_key"  # SQL function (migration 0004): int64 and bytes in order


def key_value_sql(field: str, doc: str = "doc") -> str:
    """What an indexed field's key column holds: the sort key of the field's value."""
    return f"{SORT_KEY}{key_expr(field, doc)}"


def key_column_sql(field: str) -> str:
    """The generated column definition of an indexed field (for CREATE TABLE)."""
    return f'"{key_column(field)}" jsonb GENERATED ALWAYS AS ({key_value_sql(field)}) STORED'


def key_fill_function(table: str, field: str) -> str:
    """The qualified name of the trigger function that fills a key column of `table`."""
    table_ref(table)
    return f'docs."{_pg_name(f"{table}.{key_column(field)}", "~")}"'


def key_sql(field: str) -> str:
    """The SQL of an index field: a built-in column or the field's generated column."""
    if field == "_creationTime":
        return "creation_time"
    if field == "_id":
        return "id"
    return f'"{key_column(field)}"'


def index_sql_name(table: str, index: str) -> str:
    """The PostgreSQL name of an app index (at most 63 bytes)."""
    return _pg_name(f"{table}__{index}", "_")


def _pg_name(name: str, sep: str) -> str:
    """`name` if it fits PostgreSQL's 63 bytes, else its start, `sep` and a digest of it."""
    if len(name.encode()) <= MAX_INDEX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name.encode()[: MAX_INDEX_NAME - 11].decode(errors='ignore')}{sep}{digest}"


def create_index_sql(table: str, index: str, fields: tuple[str, ...], concurrently: bool) -> str:
    """CREATE INDEX for a schema index (missing fields first, creation time and id last)."""
    keys = [f"{key_sql(f)} NULLS FIRST" for f in fields if f not in ("_creationTime", "_id")]
    keys += ["creation_time", "id"]
    conc = "CONCURRENTLY " if concurrently else ""
    return (
        f'CREATE INDEX {conc}IF NOT EXISTS "{index_sql_name(table, index)}" '
        f"ON {table_ref(table)} ({', '.join(keys)})"
    )


class Params:
    """Collects bind parameters and hands out `$n` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        """Append a value; return its placeholder."""
        self.values.append(value)
        return f"${len(self.values)}"

    def json(self, encoded: Any) -> str:
        """Append a wire-encoded value as jsonb."""
        text = orjson.dumps(encoded)
        if has_nul(text):
            raise ValueError(f"Invalid query value: {NUL_MESSAGE}")
        return self.add(text.decode()) + "::jsonb"

    def key(self, encoded: Any) -> str:
        """Append a wire-encoded value as an index key column holds it (its sort key)."""
        return f"{SORT_KEY}({self.json(encoded)})"


def _key_param(field: str, value: Any, params: Params) -> str:
    if field == "_creationTime":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError("_creationTime is compared with a number")
        return params.add(float(value)) + "::float8"
    if field == "_id":
        if not isinstance(value, str):
            raise ValueError("_id is compared with a string")
        return params.add(value) + "::text"
    return params.key(value)


def _bound_sql(field: str, bound: Bound, op: str, params: Params) -> str:
    return f"{key_sql(field)} {op} {_key_param(field, bound.value, params)}"


def range_where(r: IndexRange, params: Params) -> list[str]:
    """WHERE clauses selecting an index range."""
    clauses = []
    for field, value in zip(r.fields, r.eq, strict=False):
        clauses.append(f"{key_sql(field)} = {_key_param(field, value, params)}")
    rf = r.range_field
    if rf is not None:
        if r.lower is not None:
            clauses.append(_bound_sql(rf, r.lower, ">=" if r.lower.inclusive else ">", params))
        if r.upper is not None:
            clauses.append(_bound_sql(rf, r.upper, "<=" if r.upper.inclusive else "<", params))
    return clauses


def order_by(r: IndexRange) -> str:
    """ORDER BY of an index range in its order."""
    direction = "ASC NULLS FIRST" if r.order == "asc" else "DESC NULLS LAST"
    plain = "ASC" if r.order == "asc" else "DESC"
    keys = [f"{key_sql(f)} {direction}" for f in r.fields if f not in ("_creationTime", "_id")]
    if r.fields == ("_id",):
        return f"id {plain}"
    keys += [f"creation_time {plain}", f"id {plain}"]
    return ", ".join(keys)


# ---------------------------------------------------------------- filters


def _jsonb(expr: Expr, params: Params) -> str:
    """Compile an expression to a jsonb-valued SQL expression."""
    if isinstance(expr, Field):
        return f"(doc #> {params.add(list(expr.path))}::text[])"
    if isinstance(expr, Literal):
        if expr.value is UNSET:
            return "NULL::jsonb"
        return params.json(expr.value)
    if expr.name in ARITHMETIC:
        return f"to_jsonb({_number(expr, params)})"
    return f"to_jsonb({_bool(expr, params)})"


def _num_of(expr: Expr, params: Params) -> str:
    if isinstance(expr, Op) and expr.name in ARITHMETIC:
        return _number(expr, params)
    j = _jsonb(expr, params)
    return f"(CASE WHEN jsonb_typeof({j}) = 'number' THEN ({j})::float8 END)"


def _number(expr: Op, params: Params) -> str:
    args = [_num_of(a, params) for a in expr.args]
    if expr.name == "neg":
        return f"(-{args[0]})"
    a, b = args
    if expr.name == "add":
        return f"({a} + {b})"
    if expr.name == "sub":
        return f"({a} - {b})"
    if expr.name == "mul":
        return f"({a} * {b})"
    if expr.name == "div":
        return f"({a} / NULLIF({b}, 0))"
    return f"(mod(({a})::numeric, NULLIF(({b})::numeric, 0))::float8)"


_CMP = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _may_be_object(expr: Expr) -> bool:
    """False for expressions whose value is never a jsonb object (literals, operators)."""
    if isinstance(expr, Field):
        return True
    return isinstance(expr, Literal) and isinstance(expr.value, dict)


def _bool(expr: Expr, params: Params) -> str:
    """Compile an expression to a boolean SQL expression (never NULL)."""
    if not isinstance(expr, Op):
        return f"coalesce({_jsonb(expr, params)} = 'true'::jsonb, false)"
    name = expr.name
    if name in ("and", "or"):
        if not expr.args:
            return "true" if name == "and" else "false"
        joiner = " AND " if name == "and" else " OR "
        return "(" + joiner.join(_bool(a, params) for a in expr.args) + ")"
    if name == "not":
        return f"(NOT {_bool(expr.args[0], params)})"
    if name in ("eq", "neq"):
        a, b = (_jsonb(x, params) for x in expr.args)
        return f"({a} IS {'NOT ' if name == 'eq' else ''}DISTINCT FROM {b})"
    if name in _CMP:
        # Both sides through their sort keys (int64 and bytes in order), unless one side is
        # a value that cannot be an object: the sort key changes objects only, and an
        # object against a non-object compares by type either way. Saves a call per row.
        wrap = all(_may_be_object(x) for x in expr.args)
        a, b = (
            f"{SORT_KEY}({_jsonb(x, params)})" if wrap else _jsonb(x, params) for x in expr.args
        )
        # A missing field sorts before every value, as in an index.
        return (
            f"(CASE WHEN {a} IS NULL AND {b} IS NULL THEN {'true' if name in ('lte', 'gte') else 'false'}"
            f" WHEN {a} IS NULL THEN {'true' if name in ('lt', 'lte') else 'false'}"
            f" WHEN {b} IS NULL THEN {'true' if name in ('gt', 'gte') else 'false'}"
            f" ELSE {a} {_CMP[name]} {b} END)"
        )
    if name in ARITHMETIC:
        return f"coalesce(to_jsonb({_number(expr, params)}) = 'true'::jsonb, false)"
    raise ValueError(f"Unknown filter operator {name!r}")


def filter_sql(expr: Expr, params: Params) -> str:
    """A WHERE clause for a filter expression."""
    return _bool(expr, params)
