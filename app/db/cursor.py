"""Pagination cursors: opaque, signed positions in one query's order.

A cursor names a position in a query's index order: an index key (field values, then
creation time and id; a missing field is kept as such) or the end of the query. It is
bound to the query it came from (table, index, order; the search text for search
queries) and signed with HMAC-SHA256 under the deployment's cursor key (see
`cursor_key`; the catalog keeps it), so a cursor that was altered, handed to another
query, or issued by another deployment is refused with `InvalidCursor`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

from app.db.readset import MISSING
from app.values import ConvexError

_VERSION = 1
_TAG_BYTES = 16
_MAX_CURSOR_CHARS = 64 * 1024
_MISSING_JSON = {"$missing": True}
_KEY_CONTEXT = b"convect/pagination-cursor/v1"


class InvalidCursor(ConvexError):
    """A cursor that this deployment did not issue for this query.

    Its data is what Convex's clients look for to restart pagination from the start.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            {
                "isConvexSystemError": True,
                "paginationError": "InvalidCursor",
                "message": f"InvalidCursor: {reason}",
            }
        )
        self.reason = reason

    def __str__(self) -> str:
        return f"InvalidCursor: {self.reason}"


def cursor_key(secret: str | bytes) -> bytes:
    """The HMAC key cursors are signed with, from the deployment's secret.

    Every process of a deployment must be given the same secret.
    """
    raw = secret.encode() if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("the cursor secret must not be empty")
    return hmac.new(raw, _KEY_CONTEXT, hashlib.sha256).digest()


@dataclass(frozen=True)
class Position:
    """A point in a query's order: after the row with `key`; the end (None); the start (())."""

    key: tuple[Any, ...] | None

    @property
    def is_end(self) -> bool:
        """True for the end of the query."""
        return self.key is None


END = Position(None)
START = Position(())


def fingerprint(*parts: Any) -> str:
    """A short digest of what a cursor is bound to."""
    digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_TAG_BYTES]


def encode_cursor(key: bytes, position: Position, query: str) -> str:
    """The opaque cursor string, signed with `key`, for a position of the query with
    fingerprint `query`."""
    payload: dict[str, Any] = {"v": _VERSION, "q": query}
    if position.key is None:
        payload["end"] = True
    elif position.key == ():
        payload["start"] = True
    else:
        payload["k"] = [_MISSING_JSON if k is MISSING else k for k in position.key]
    body = orjson.dumps(payload)
    return _b64(body) + "." + _b64(_tag(key, body))


def decode_cursor(key: bytes, cursor: object, query: str, key_length: int) -> Position:
    """Check (against `key`) and decode a cursor of the query with fingerprint `query`."""
    if not isinstance(cursor, str):
        raise InvalidCursor(f"a cursor is a string, got {type(cursor).__name__}")
    if len(cursor) > _MAX_CURSOR_CHARS or cursor.count(".") != 1:
        raise InvalidCursor("malformed cursor")
    body_text, tag_text = cursor.split(".")
    try:
        body, tag = _unb64(body_text), _unb64(tag_text)
    except (ValueError, TypeError):
        raise InvalidCursor("malformed cursor") from None
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise InvalidCursor("the cursor was not issued by this deployment or was altered")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidCursor("malformed cursor") from None
    if not isinstance(payload, dict) or payload.get("v") != _VERSION:
        raise InvalidCursor("unsupported cursor version")
    if payload.get("q") != query:
        raise InvalidCursor("the cursor belongs to a different query")
    if payload.get("end") is True:
        return END
    if payload.get("start") is True:
        return START
    values = payload.get("k")
    if not isinstance(values, list) or len(values) != key_length:
        raise InvalidCursor("malformed cursor")
    return Position(tuple(MISSING if k == _MISSING_JSON else k for k in values))
