"""The engine (not imported by app authors): runs registered functions for every entry."""

from app.engine.engine import Engine, ReturnsValidationError, Unavailable
from app.engine.execute import (
    COMMIT_SQL,
    Call,
    Failure,
    FunctionNotFound,
    Outcome,
    Runner,
    check_args,
    new_request_id,
)

__all__ = [
    "COMMIT_SQL",
    "Call",
    "Engine",
    "Failure",
    "FunctionNotFound",
    "Outcome",
    "ReturnsValidationError",
    "Runner",
    "Unavailable",
    "check_args",
    "new_request_id",
]
