"""Document ids: opaque, URL-safe strings that name their table.

An id is 16 random bytes, the table's number (CRC-32 of its name, 4 bytes) and a
2-byte checksum, in lowercase Crockford base32: 36 characters. The table can be
checked without a database (`v.id("messages")`), and a mistyped id is rejected.
"""

from __future__ import annotations

import operator
import os
import re
import zlib

from app.schema.names import check_table_name as check_table_name
from app.schema.names import is_system_table as is_system_table

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)  # 10 bits -> 2 digits
_PAIR_SHIFTS = tuple(range(170, -1, -10))
_INT32 = str.maketrans(_CROCKFORD, "0123456789abcdefghijklmnopqrstuv")  # int(s, 32) digits
ID_LENGTH = 36
# 22 bytes fill 35 characters and 1 bit of the 36th; its 4 padding bits must be zero
# (else several strings would name one id), so the last character is 0 or g.
_ID_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{35}[0g]$")


def table_number(table: str) -> int:
    """The number ids carry for `table`."""
    return zlib.crc32(table.encode()) & 0x7FFFFFFF


def _checksum(body: bytes) -> bytes:
    # Fletcher-16: a = sum of the bytes, b = sum of the running sums (= sum of each byte
    # times the number of sums it is part of), both mod 255; computed in C, not a loop.
    a = sum(body) % 255
    b = sum(map(operator.mul, body, range(len(body), 0, -1))) % 255
    return bytes((a, b))


def new_id(table: str) -> str:
    """A fresh id for a document of `table`."""
    body = os.urandom(16) + table_number(table).to_bytes(4, "big")
    # The 22 bytes and 4 zero padding bits as 18 pairs of base-32 digits (what
    # base64.b32encode gives, translated to Crockford's digits, without its Python loop).
    n = int.from_bytes(body + _checksum(body), "big") << 4
    return "".join([_PAIRS[(n >> shift) & 0x3FF] for shift in _PAIR_SHIFTS])


def id_from_parts(internal: bytes, table: str) -> str:
    """The id of `table` whose 16 random bytes are `internal` (an imported id keeps them)."""
    if len(internal) != 16:
        raise ValueError("an id's internal part is 16 bytes")
    body = internal + table_number(table).to_bytes(4, "big")
    n = int.from_bytes(body + _checksum(body), "big") << 4
    return "".join([_PAIRS[(n >> shift) & 0x3FF] for shift in _PAIR_SHIFTS])


def id_internal(value: str) -> bytes:
    """The 16 random bytes of a well-formed id (ValueError otherwise)."""
    if _parse_id(value) is None:
        raise ValueError(f"{value!r} is not a document id")
    n = int(value.translate(_INT32), 32) >> 4
    return (n >> 48).to_bytes(16, "big")


def id_number(value: object) -> int | None:
    """The table number inside an id, or None when `value` is not a well-formed id."""
    if type(value) is str:
        known = _KNOWN.get(value)
        if known is not None:
            return known
    number = _parse_id(value)
    if number is not None and type(value) is str:
        if len(_KNOWN) >= _MAX_KNOWN:
            _KNOWN.clear()
        _KNOWN[value] = number
    return number


# Ids already parsed: one call checks the same id several times (argument validation,
# ctx.db.get, the catalog), and parsing one costs microseconds. Bounded; cleared when full.
_KNOWN: dict[str, int] = {}
_MAX_KNOWN = 8192


def _parse_id(value: object) -> int | None:
    if not isinstance(value, str) or len(value) != ID_LENGTH or not _ID_RE.match(value):
        return None
    # The 36 digits as one base-32 integer (int() runs in C; base64.b32decode loops in
    # Python): 176 bits of id, then the 4 zero padding bits.
    n = int(value.translate(_INT32), 32) >> 4
    body = (n >> 16).to_bytes(20, "big")
    if _checksum(body) != (n & 0xFFFF).to_bytes(2, "big"):
        return None
    return (n >> 16) & 0xFFFFFFFF


def is_id_for(value: object, table: str) -> bool:
    """True when `value` is a well-formed id of a document in `table`."""
    return id_number(value) == table_number(table)


class _TableOfId:
    """Compares equal to the name of the table an id was made for (by its number)."""

    __slots__ = ("number",)

    def __init__(self, number: int | None) -> None:
        self.number = number

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, str)
            and self.number is not None
            and (table_number(other) == self.number)
        )

    def __hash__(self) -> int:
        return hash(self.number)


def id_table(value: str) -> str | None:
    """For validators' `id_table`: something equal to the name of `value`'s table."""
    return _TableOfId(id_number(value))  # type: ignore[return-value]
