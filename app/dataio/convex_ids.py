"""Convex's document ids, and how they map onto Convect's.

A Convex id is base32 (the alphabet `0-9a-z` without `i l o u`) of the table's number as
a varint, 16 bytes of internal id, and a little-endian Fletcher-16 footer
(crates/value/src/id_v6.rs in get-convex/convex-backend). A Convect id holds 16 random
bytes and its table's name hash (`app.db.ids`). The mapping keeps the 16 bytes and swaps
the table part: a Convex document of table T becomes the Convect document of T with the
same 16 bytes, and back. So the mapping needs no table of its own, references between
documents (and to `_storage`) map the same way wherever they appear, an import run twice
gives the same ids, and a Convect export imported into Convect keeps every id.
"""

from __future__ import annotations

import base64

from app.db import ids

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CONVEX = str.maketrans(_STD, _ALPHABET)
_FROM_CONVEX = str.maketrans(_ALPHABET, _STD)
_MIN_LEN, _MAX_LEN = 31, 37  # base32 of 1+16+2 .. 5+16+2 bytes
FIRST_TABLE_NUMBER = 10001  # Convex numbers user tables from here
STORAGE_TABLE_NUMBER = 10000  # what an export from Convect gives `_storage`


def _vint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _fletcher16(data: bytes) -> int:
    c0 = c1 = 0
    for byte in data:
        c0 = (c0 + byte) & 0xFF
        c1 = (c1 + c0) & 0xFF
    return (c1 << 8) | c0


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").translate(_TO_CONVEX)


def encode_convex_id(table_number: int, internal: bytes) -> str:
    """The Convex id of document `internal` (16 bytes) in table number `table_number`."""
    body = _vint(table_number) + internal
    return _b32(body + _fletcher16(body).to_bytes(2, "little"))


def decode_convex_id(value: object) -> tuple[int, bytes] | None:
    """(table number, 16-byte internal id) of a canonical Convex id, else None."""
    if not isinstance(value, str) or not _MIN_LEN <= len(value) <= _MAX_LEN:
        return None
    if value.strip(_ALPHABET):
        return None
    text = value.translate(_FROM_CONVEX)
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        return None
    number = shift = pos = 0
    while True:
        if pos >= len(raw) or pos >= 5:
            return None
        byte = raw[pos]
        number |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if byte < 0x80:
            break
    if number == 0 or len(raw) != pos + 18:
        return None
    internal = raw[pos : pos + 16]
    if _fletcher16(raw[: pos + 16]) != int.from_bytes(raw[pos + 16 :], "little"):
        return None
    if encode_convex_id(number, internal) != value:
        return None  # not canonical
    return number, internal


class IdMap:
    """Table names and their Convex numbers, for one export or import."""

    def __init__(self, numbers: dict[str, int]) -> None:
        self.numbers = dict(numbers)  # table -> Convex table number
        self.tables = {n: t for t, n in numbers.items()}
        self.convect_numbers = {ids.table_number(t): t for t in numbers}

    @classmethod
    def for_tables(cls, tables: list[str]) -> IdMap:
        """Convex numbers for Convect's tables: `_storage` fixed, the others in name order."""
        numbers = {"_storage": STORAGE_TABLE_NUMBER}
        user = sorted(t for t in tables if not ids.is_system_table(t))
        numbers.update({t: FIRST_TABLE_NUMBER + i for i, t in enumerate(user)})
        return cls(numbers)

    def to_convex(self, value: str) -> str | None:
        """The Convex id of a Convect id of a table in the map (else None)."""
        table = self.convect_numbers.get(ids.id_number(value) or -1)
        if table is None:
            return None
        return encode_convex_id(self.numbers[table], ids.id_internal(value))

    def to_convect(self, value: str) -> str | None:
        """The Convect id of a Convex id of a table in the map (else None)."""
        decoded = decode_convex_id(value)
        if decoded is None:
            return None
        table = self.tables.get(decoded[0])
        return None if table is None else ids.id_from_parts(decoded[1], table)


__all__ = ["IdMap", "decode_convex_id", "encode_convex_id"]
