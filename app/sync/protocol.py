"""Sync protocol messages as plain data: timestamps, parsing and building messages."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

from app.engine import Failure, Outcome
from app.values import encode_value

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


def query_result(
    query_id: int, value: Any, failure: Failure | None, log_lines: Sequence[str], journal: Any
) -> dict[str, Any]:
    """A query's result for a Transition: `QueryUpdated`, or `QueryFailed`."""
    if failure is None:
        return {
            "type": "QueryUpdated",
            "queryId": query_id,
            "value": value,
            "logLines": list(log_lines),
            "journal": journal,
        }
    msg: dict[str, Any] = {
        "type": "QueryFailed",
        "queryId": query_id,
        "errorMessage": failure.message,
        "logLines": list(log_lines),
        "journal": journal,
    }
    if failure.is_convex_error:
        msg["errorData"] = encode_value(failure.data)
    return msg


def function_response(
    kind: str, request_id: int, outcome: Outcome, *, dev: bool, with_ts: bool
) -> dict[str, Any]:
    """A `MutationResponse` (`with_ts`) or `ActionResponse` for a socket's call."""
    msg: dict[str, Any] = {"type": kind, "requestId": request_id}
    lines = outcome.log_lines if dev else []
    if outcome.error is None:
        msg.update(success=True, result=outcome.value, logLines=lines)
        if with_ts:
            msg["ts"] = encode_ts(outcome.commit_ts or 0)
        return msg
    msg.update(success=False, result=outcome.error.message, logLines=lines)
    if outcome.error.is_convex_error:
        msg["errorData"] = encode_value(outcome.error.data)
    return msg
