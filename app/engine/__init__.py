"""The engine (not imported by app authors): runs registered functions for every entry."""

from app.engine.args import MAX_ARGS_BYTES, check_args, check_returns, decode_args, wire_args
from app.engine.call import Call, NestedFailure, Unavailable
from app.engine.engine import Engine, Role
from app.engine.execute import COMMIT_SQL, TxGuard, projected_writes
from app.engine.outcome import (
    Failure,
    FunctionNotFound,
    InvalidArgs,
    Outcome,
    Overloaded,
    ReturnsValidationError,
    describe,
    new_request_id,
)

__all__ = [
    "COMMIT_SQL",
    "MAX_ARGS_BYTES",
    "Call",
    "Engine",
    "Failure",
    "FunctionNotFound",
    "InvalidArgs",
    "NestedFailure",
    "Outcome",
    "Overloaded",
    "ReturnsValidationError",
    "Role",
    "TxGuard",
    "Unavailable",
    "check_args",
    "check_returns",
    "decode_args",
    "describe",
    "new_request_id",
    "projected_writes",
    "wire_args",
]
