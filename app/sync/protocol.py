"""Sync protocol messages as plain data: timestamps, parsing and building messages."""

from __future__ import annotations

import base64
import struct
from typing import Any

MAX_TS = 2**63 - 1


def encode_ts(ts: int) -> str:
    """A u64 timestamp as base64 of its 8 little-endian bytes."""
    return base64.b64encode(struct.pack("<Q", ts)).decode()


def decode_ts(value: Any) -> int:
    """Inverse of `encode_ts`; ValueError for anything malformed."""
    if not isinstance(value, str):
        raise ValueError("timestamp must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise ValueError("timestamp is not valid base64") from None
    if len(raw) != 8:
        raise ValueError("timestamp must be 8 bytes")
    ts: int = struct.unpack("<Q", raw)[0]
    if ts > MAX_TS:
        raise ValueError("timestamp out of range")
    return ts
