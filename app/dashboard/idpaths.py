"""Where a table's documents hold ids of other documents, so the data view can link them.

A path names a place in a document: field names joined by `.`, `[]` for an array's
items, `{}` for a record's values (`author`, `refs[]`, `meta.owner`, `pairs[].to`). With a
schema, the paths come from its `v.id(...)` validators, anywhere in the document; a table
without one gets the paths of the strings on the page that are ids of existing tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from app.values import Validator
from app.values.validators import (
    ArrayValidator,
    IdValidator,
    ObjectValidator,
    OptionalValidator,
    RecordValidator,
    UnionValidator,
)

MAX_DEPTH = 16  # deeper values are not searched for ids (the page stays cheap)

__all__ = ["from_documents", "from_validator", "top_level_fields"]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def from_validator(validator: Validator | None, prefix: str = "") -> dict[str, str]:
    """Every path where the validator accepts a `v.id(table)`, with the table."""
    if validator is None:
        return {}
    if isinstance(validator, IdValidator):
        return {prefix: validator.table_name} if prefix else {}
    if isinstance(validator, OptionalValidator):
        return from_validator(validator.inner, prefix)
    if isinstance(validator, ArrayValidator):
        return from_validator(validator.item, prefix + "[]")
    if isinstance(validator, RecordValidator):
        return from_validator(validator.values, prefix + "{}")
    out: dict[str, str] = {}
    if isinstance(validator, ObjectValidator):
        for name, field in validator.fields.items():
            out.update(from_validator(field, _join(prefix, name)))
    elif isinstance(validator, UnionValidator):
        for member in validator.members:
            out.update(from_validator(member, prefix))
    return out


def from_documents(
    docs: Iterable[dict[str, Any]], table_of_id: Callable[[object], str | None]
) -> dict[str, str]:
    """The paths of the strings in `docs` that are ids of existing tables (no schema)."""
    out: dict[str, str] = {}

    def walk(value: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if isinstance(value, str):
            if path not in out:
                table = table_of_id(value)
                if table is not None:
                    out[path] = table
        elif isinstance(value, list):
            for item in value:
                walk(item, path + "[]", depth + 1)
        elif isinstance(value, dict):
            for name, item in value.items():
                if depth == 0 and name[:1] == "_":
                    continue  # _id and _creationTime: the view shows those itself
                walk(item, _join(path, name), depth + 1)

    for doc in docs:
        walk(doc, "", 0)
    return out


def top_level_fields(validator: Validator | None) -> list[str]:
    """The top-level field names a table's validator names (all members of a union)."""
    members: tuple[Validator, ...] = ()
    if isinstance(validator, ObjectValidator):
        members = (validator,)
    elif isinstance(validator, UnionValidator):
        members = validator.members
    names: dict[str, None] = {}
    for m in members:
        if isinstance(m, ObjectValidator):
            names.update(dict.fromkeys(m.fields))
    return list(names)
