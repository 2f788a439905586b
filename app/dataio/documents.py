"""One line of an export's table file: read in bounded pieces, checked as a document."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import IO, Any

import orjson

from app.dataio.format import parse_line
from app.db import ids
from app.db.database import MAX_DOCUMENT_BYTES
from app.db.sql import NUL_MESSAGE, has_nul
from app.values import check_document_fields, decode_value

MAX_LINE = 4 * MAX_DOCUMENT_BYTES  # jsonb's text form is roomier than the stored limit
READ_BLOCK = 1024 * 1024


class LineTooLong(ValueError):
    """A line of a table file is longer than any valid document."""


def read_lines(f: IO[bytes], entry: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a zip entry, read in large blocks; lines are bounded."""
    number = 0
    rest = b""
    while block := f.read(READ_BLOCK):
        parts = (rest + block).split(b"\n")
        rest = parts.pop()
        if len(rest) > MAX_LINE:
            raise LineTooLong(
                f"{entry}, line {number + len(parts) + 1}: the document is larger than the "
                f"{MAX_DOCUMENT_BYTES} byte limit"
            )
        for line in parts:
            number += 1
            if len(line) > MAX_LINE:
                raise LineTooLong(
                    f"{entry}, line {number}: the document is larger than the "
                    f"{MAX_DOCUMENT_BYTES} byte limit"
                )
            yield number, line.rstrip(b"\r")
    if rest:
        yield number + 1, rest.rstrip(b"\r")


def check_line(table: str, line: bytes, validator: Any = None) -> tuple[str, float, Any]:
    """(id, creation time, parsed document) of a document line of `table`; ValueError
    naming the problem when it is not a valid document of that table (or of `validator`)."""
    if not line.strip():
        raise ValueError("empty line (one document per line expected)")
    if has_nul(line):
        raise ValueError(NUL_MESSAGE)
    try:
        doc = parse_line(line)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"expected a document (a JSON object), got {type(doc).__name__}")
    doc_id = doc.get("_id")
    if not isinstance(doc_id, str) or not ids.is_id_for(doc_id, table):
        raise ValueError(f"_id {doc_id!r} is not an id of table {table}")
    created = doc.get("_creationTime")
    if (
        not isinstance(created, float | int)
        or isinstance(created, bool)
        or not math.isfinite(created)
        or created <= 0
    ):
        raise ValueError(f"document {doc_id}: _creationTime {created!r} is not a time in ms")
    if len(orjson.dumps(doc)) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"document {doc_id} is larger than the {MAX_DOCUMENT_BYTES} byte limit")
    value = decode_value(doc)
    user = {k: v for k, v in value.items() if k not in ("_id", "_creationTime")}
    check_document_fields(user)
    if validator is not None:
        try:
            validator.validate(user, "", id_table=ids.id_table)
        except ValueError as exc:
            raise ValueError(
                f"document {doc_id} does not match the deployment's schema: {exc}"
            ) from None
    return doc_id, float(created), doc
