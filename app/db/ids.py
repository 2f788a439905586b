"""Document ids: opaque, URL-safe strings that name their table.

An id is 16 random bytes, the table's number (CRC-32 of its name, 4 bytes) and a
2-byte checksum, in lowercase Crockford base32: 36 characters. The table can be
checked without a database (`v.id("messages")`), and a mistyped id is rejected.
"""

from __future__ import annotations

import base64
import os
import re
import zlib

_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_ENC = str.maketrans(_STD, _CROCKFORD)
_DEC = str.maketrans(_CROCKFORD, _STD)
ID_LENGTH = 36
_ID_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{36}$")
_TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_SYSTEM_TABLES = frozenset({"_storage", "_scheduled_functions"})


def table_number(table: str) -> int:
    """The number ids carry for `table`."""
    return zlib.crc32(table.encode()) & 0x7FFFFFFF


def _checksum(body: bytes) -> bytes:
    a = b = 0
    for byte in body:
        a = (a + byte) % 255
        b = (b + a) % 255
    return bytes((a, b))


def new_id(table: str) -> str:
    """A fresh id for a document of `table`."""
    body = os.urandom(16) + table_number(table).to_bytes(4, "big")
    raw = body + _checksum(body)
    return base64.b32encode(raw).decode().rstrip("=").translate(_ENC)


def id_number(value: object) -> int | None:
    """The table number inside an id, or None when `value` is not a well-formed id."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        return None
    try:
        raw = base64.b32decode(value.translate(_DEC) + "====")
    except (ValueError, TypeError):
        return None
    if len(raw) != 22 or _checksum(raw[:20]) != raw[20:]:
        return None
    return int.from_bytes(raw[16:20], "big")


def is_id_for(value: object, table: str) -> bool:
    """True when `value` is a well-formed id of a document in `table`."""
    return id_number(value) == table_number(table)


def check_table_name(table: object, *, allow_system: bool = False) -> str:
    """Return `table` if it is a valid table name, else raise ValueError."""
    if allow_system and table in _SYSTEM_TABLES:
        return str(table)
    if not isinstance(table, str) or not _TABLE_RE.match(table):
        raise ValueError(
            f"Invalid table name {table!r}: table names start with a letter and contain "
            "only letters, digits and underscores (at most 63 characters)."
        )
    return table


def is_system_table(table: str) -> bool:
    """True for Convex's system tables (`_storage`, `_scheduled_functions`)."""
    return table in _SYSTEM_TABLES


class _TableOfId:
    """Compares equal to the name of the table an id was made for (by its number)."""

    __slots__ = ("number",)

    def __init__(self, number: int | None) -> None:
        self.number = number

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.number is not None and (
            table_number(other) == self.number
        )

    def __hash__(self) -> int:
        return hash(self.number)


def id_table(value: str) -> str | None:
    """For validators' `id_table`: something equal to the name of `value`'s table."""
    return _TableOfId(id_number(value))  # type: ignore[return-value]
