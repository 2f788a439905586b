"""Columns derived from documents for search and vector indexes: names and values.

A search index `<index>` keeps a generated tsvector column `ts__<index>`; a vector index
keeps a pgvector column `vec__<index>` that the document writer fills (`doc_vector`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from app.db.errors import DocumentError
from app.schema.definition import VectorIndex
from app.values import decode_value

TS_PREFIX = "ts__"
VECTOR_PREFIX = "vec__"
FLOAT32_MAX = 3.4028234663852886e38
MAX_IDENTIFIER = 63


def column_name(prefix: str, index: str) -> str:
    """The column that holds an index's derived value (at most 63 bytes)."""
    name = prefix + index
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[: MAX_IDENTIFIER - 11]}_{digest}"


def ts_column(index: str) -> str:
    """The generated tsvector column of a search index."""
    return column_name(TS_PREFIX, index)


def vector_column(index: str) -> str:
    """The pgvector column of a vector index."""
    return column_name(VECTOR_PREFIX, index)


def field_value(doc: dict[str, Any], path: str) -> Any:
    """A (wire-encoded) document's value at a dotted path; None when missing."""
    value: Any = doc
    for seg in path.split("."):
        if not isinstance(value, dict) or seg not in value:
            return None
        value = value[seg]
    return value


def vector_text(values: Any, dimensions: int, where: str) -> str:
    """pgvector's text form of a list of numbers; a clear error for anything else."""
    if not isinstance(values, list | tuple):
        raise DocumentError(
            f"{where} must be an array of {dimensions} numbers, got {type(values).__name__}"
        )
    if len(values) != dimensions:
        raise DocumentError(
            f"{where} must have {dimensions} dimensions, got a vector of length {len(values)}"
        )
    floats = []
    for i, x in enumerate(values):
        if type(x) is not float and (isinstance(x, bool) or not isinstance(x, int | float)):
            raise DocumentError(f"{where}[{i}] must be a number, got {type(x).__name__}")
        f = float(x)
        if not -FLOAT32_MAX <= f <= FLOAT32_MAX:  # also false for NaN
            raise DocumentError(f"{where}[{i}] must be a finite 32-bit float, got {f!r}")
        floats.append(f)
    return orjson.dumps(floats).decode()


def doc_vector(doc: dict[str, Any], table: str, index: str, vi: VectorIndex) -> str | None:
    """The vector a wire-encoded document puts in a vector index (None: not indexed)."""
    raw = field_value(doc, vi.vector_field)
    if raw is None:
        return None
    where = f"Field {vi.vector_field!r} of a {table!r} document (vector index {index!r})"
    return vector_text(decode_value(raw), vi.dimensions, where)
