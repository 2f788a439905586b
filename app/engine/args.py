"""A function's arguments from the wire, and checking arguments and results against validators."""

from __future__ import annotations

from typing import Any

import orjson

from app.db.ids import id_table
from app.engine.outcome import InvalidArgs, ReturnsValidationError
from app.server.functions import RegisteredFunction
from app.values import UNSET, ArgumentValidationError, ValueEncodingError, decode_value

MAX_ARGS_BYTES = 8 * 1024 * 1024  # a function's arguments, on every transport (DESIGN §2)


def _one_object(raw: Any) -> dict[str, Any]:
    """`[obj]` (npm) or `obj` (Python) or nothing, as one encoded object."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        if len(raw) > 1:
            raise InvalidArgs("Functions take a single object of arguments")
        raw = raw[0] if raw else {}
    if not isinstance(raw, dict):
        raise InvalidArgs(f"Function arguments must be an object, got {type(raw).__name__}")
    return raw


def _decoded(wire: dict[str, Any], measured: bool) -> dict[str, Any]:
    """`wire` decoded (which checks the encoding and the nesting depth), then size-checked."""
    try:
        args: dict[str, Any] = decode_value(wire)
    except ValueEncodingError as exc:
        raise InvalidArgs(f"Invalid function arguments: {exc}", str(exc)) from None
    if not measured and len(orjson.dumps(wire)) > MAX_ARGS_BYTES:
        raise InvalidArgs(f"Arguments exceed {MAX_ARGS_BYTES} bytes")
    return args


def decode_args(raw: Any, *, measured: bool = False) -> dict[str, Any]:
    """A call's arguments as sent, decoded to Python values.

    Raises InvalidArgs when they are not one object of valid Convex JSON, or exceed
    MAX_ARGS_BYTES (unless the transport `measured` them already, as HTTP bodies are).
    """
    return _decoded(_one_object(raw), measured)


def wire_args(raw: Any) -> dict[str, Any]:
    """A call's arguments as sent, checked as `decode_args` does, but kept encoded."""
    wire = _one_object(raw)
    _decoded(wire, measured=False)
    return wire


def check_args(fn: RegisteredFunction, args: Any) -> dict[str, Any]:
    """Validate and normalise a function's arguments (always an object)."""
    if not isinstance(args, dict):
        raise ArgumentValidationError(
            f"Arguments of {fn.path} must be an object, got {type(args).__name__}"
        )
    if fn.args is None:
        return args
    checked: dict[str, Any] = fn.args.validate(args, "", id_table=id_table)
    return checked


def check_returns(fn: RegisteredFunction, value: Any) -> Any:
    """Validate a function's return value against `returns=`."""
    if fn.returns is None:
        return value
    if fn.returns.is_optional and (value is None or value is UNSET):
        # Python has no `undefined`: returning None (or falling through) is JS's
        # `return undefined`, which `v.optional(...)` accepts; the client gets null.
        return None
    try:
        return fn.returns.validate(value, "")
    except ArgumentValidationError as exc:
        raise ReturnsValidationError(f"Return value of {fn.path} is invalid: {exc}") from None


__all__ = ["MAX_ARGS_BYTES", "check_args", "check_returns", "decode_args", "wire_args"]
