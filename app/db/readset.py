"""Read sets and write sets: what a function read and wrote, as plain data.

A query's read set is the index ranges it actually consumed (cut at the last row when
a limit stopped it early), the ids it fetched, and whole tables for reads no index
bounds. A mutation's write set is every touched document's old and new index keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.db.query import IndexRange


@dataclass(frozen=True, slots=True)
class RangeRead:
    """An index range that was read; `last_key` set when a limit stopped early."""

    range: IndexRange
    last_key: tuple[Any, ...] | None = None


@dataclass
class ReadSet:
    """Everything one function run read."""

    ranges: list[RangeRead] = field(default_factory=list)
    ids: set[tuple[str, str]] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)

    def merge(self, other: ReadSet) -> None:
        """Add another run's reads (a nested run_query)."""
        self.ranges.extend(other.ranges)
        self.ids |= other.ids
        self.tables |= other.tables


@dataclass
class Write:
    """One document's change in a mutation: `old`/`new` are None for insert/delete."""

    table: str
    id: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


def doc_key(doc: dict[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...]:
    """The index key of a wire-encoded document: field values, then creation time and id."""
    key: list[Any] = []
    for f in fields:
        if f in ("_creationTime", "_id"):
            continue
        value: Any = doc
        for seg in f.split("."):
            value = value.get(seg, _MISSING) if isinstance(value, dict) else _MISSING
            if value is _MISSING:
                break
        key.append(value)
    if fields == ("_id",):
        return (doc.get("_id"),)
    key.append(doc.get("_creationTime"))
    key.append(doc.get("_id"))
    return tuple(key)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()
MISSING = _MISSING


def project(doc: dict[str, Any] | None, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """The parts of a document the commit log keeps: indexed fields, id, creation time."""
    if doc is None:
        return None
    out: dict[str, Any] = {"_id": doc["_id"], "_creationTime": doc["_creationTime"]}
    for f in fields:
        head = f.split(".")[0]
        if head in doc:
            out[head] = doc[head]
    return out
