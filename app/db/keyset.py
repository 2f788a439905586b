"""SQL for positions in an index order: "after this key" and "up to that key".

An index key is (field values..., creation_time, id); a missing field is SQL NULL and
sorts first. "After key K" is split into a few disjoint conditions, each an index range
(equalities on a prefix, then one range), so that PostgreSQL starts every scan at the
cursor instead of filtering everything before it. Values are bind parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from app.db.query import Bound, IndexRange
from app.db.readset import MISSING
from app.db.sql import Params, key_sql


@dataclass(frozen=True)
class KeyColumn:
    """One component of an index key: its SQL and whether it can be NULL (missing)."""

    sql: str
    kind: str  # "json" | "time" | "id"

    @property
    def nullable(self) -> bool:
        """Document fields can be missing; creation time and id cannot."""
        return self.kind == "json"


def key_columns(fields: tuple[str, ...]) -> list[KeyColumn]:
    """The key columns of an index, aligned with `app.db.readset.doc_key`."""
    if fields == ("_id",):
        return [KeyColumn("id", "id")]
    cols = [KeyColumn(key_sql(f), "json") for f in fields if f not in ("_creationTime", "_id")]
    return [*cols, KeyColumn("creation_time", "time"), KeyColumn("id", "id")]


def check_key(cols: list[KeyColumn], key: tuple[Any, ...]) -> bool:
    """True when a decoded key has the right shape for these columns."""
    if len(key) != len(cols):
        return False
    for col, value in zip(cols, key, strict=True):
        if col.kind == "time" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return False
        if col.kind == "id" and not isinstance(value, str):
            return False
    return True


def _placeholders(
    cols: list[KeyColumn], key: tuple[Any, ...], params: Params, skip: int = 0
) -> list[str]:
    out = []
    for i, (col, value) in enumerate(zip(cols, key, strict=True)):
        if i < skip:
            out.append("")
        elif value is MISSING:
            out.append("NULL")
        elif col.kind == "json":
            out.append(params.key(value))
        elif col.kind == "time":
            out.append(params.add(float(value)) + "::float8")
        else:
            out.append(params.add(value) + "::text")
    return out


def after_terms(
    cols: list[KeyColumn], key: tuple[Any, ...], fixed: int, desc: bool, params: Params
) -> list[str]:
    """Disjoint index-range conditions whose union is "after `key`" in the query's order.

    `fixed` leading columns are pinned by the range's equalities and skipped.
    """
    ph = _placeholders(cols, key, params, fixed)
    tail = len(cols)
    while tail > fixed and not cols[tail - 1].nullable:
        tail -= 1
    terms: list[list[str]] = []
    prefix: list[str] = []
    for i in range(fixed, tail):
        c, missing = cols[i].sql, key[i] is MISSING
        if not desc:
            terms.append([*prefix, f"{c} IS NOT NULL" if missing else f"{c} > {ph[i]}"])
        elif not missing:
            terms.append([*prefix, f"{c} < {ph[i]}"])
            terms.append([*prefix, f"{c} IS NULL"])
        prefix.append(f"{c} IS NULL" if missing else f"{c} = {ph[i]}")
    rest = list(range(max(tail, fixed), len(cols)))
    if rest:
        op = "<" if desc else ">"
        if len(rest) == 1:
            atom = f"{cols[rest[0]].sql} {op} {ph[rest[0]]}"
        else:
            lhs = ", ".join(cols[i].sql for i in rest)
            rhs = ", ".join(ph[i] for i in rest)
            atom = f"({lhs}) {op} ({rhs})"
        terms.append([*prefix, atom])
    return [" AND ".join(t) if t else "true" for t in terms]


def after_expr(cols: list[KeyColumn], key: tuple[Any, ...], desc: bool, params: Params) -> str:
    """A never-NULL boolean: the row's key comes after `key` in the query's order."""
    ph = _placeholders(cols, key, params)
    disjuncts: list[str] = []
    prefix: list[str] = []
    for i, col in enumerate(cols):
        c, missing = col.sql, key[i] is MISSING
        if not desc:
            atom = f"{c} IS NOT NULL" if missing else f"coalesce({c} > {ph[i]}, false)"
        elif missing:
            atom = "false"
        elif col.nullable:
            atom = f"({c} IS NULL OR coalesce({c} < {ph[i]}, false))"
        else:
            atom = f"{c} < {ph[i]}"
        disjuncts.append("(" + " AND ".join([*prefix, atom]) + ")")
        prefix.append(f"{c} IS NULL" if missing else f"coalesce({c} = {ph[i]}, false)")
    return "(" + " OR ".join(disjuncts) + ")"


def order_sql(cols: list[KeyColumn], desc: bool, alias: str | None = None) -> str:
    """ORDER BY over key columns (or their aliases `k0, k1, ...`)."""
    parts = []
    for i, col in enumerate(cols):
        expr = f"{alias}{i}" if alias else col.sql
        if desc:
            parts.append(f"{expr} DESC NULLS LAST" if col.nullable else f"{expr} DESC")
        else:
            parts.append(f"{expr} ASC NULLS FIRST" if col.nullable else f"{expr} ASC")
    return ", ".join(parts)


def narrowed(r: IndexRange, key: tuple[Any, ...]) -> IndexRange:
    """The range cut to start at `key` (for read sets), where an index bound can say so."""
    n = len(r.eq)
    if n >= len(r.fields) or n >= len(key) or key[n] is MISSING:
        return r
    bound = Bound(key[n], inclusive=True)
    if r.order == "asc":
        return replace(r, lower=bound)
    return replace(r, upper=bound)
