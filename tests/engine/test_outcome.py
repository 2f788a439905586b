"""The one error mapping and argument parsing (no database)."""

from __future__ import annotations

import asyncpg
import pytest

from app.db.errors import ConflictError, LimitError
from app.engine import FunctionNotFound, InvalidArgs, decode_args, wire_args
from app.engine.args import MAX_ARGS_BYTES
from app.engine.outcome import failure_of
from app.values import UNSET, ArgumentValidationError, ConvexError


def test_a_convex_error_keeps_its_data_and_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    failure = failure_of(ConvexError({"code": 1}), "r1", "m:f", "mutation", dev=False)
    assert failure.message.startswith("Uncaught ConvexError: ")
    assert failure.data == {"code": 1} and failure.is_convex_error
    assert failure.cause == failure.message and not failure.transient
    assert not caplog.records


def test_an_unexpected_error_hides_its_text_in_prod_and_shows_it_in_dev(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prod = failure_of(ValueError("secret detail"), "abc123", "m:f", "query", dev=False)
    assert prod.message == "[Request ID: abc123] Server Error"
    assert prod.data is UNSET and prod.cause == "Uncaught ValueError: secret detail"
    dev = failure_of(ValueError("secret detail"), "abc123", "m:f", "query", dev=True)
    assert dev.message == "[Request ID: abc123] Server Error\nUncaught ValueError: secret detail"
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 2 and "secret detail" in logged[0].getMessage()
    assert logged[0].request_id == "abc123"  # type: ignore[attr-defined]


def test_client_errors_are_named_plainly_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert failure_of(FunctionNotFound("no f"), "r", None, None, dev=False).message == "no f"
    bad = failure_of(ArgumentValidationError("x is missing"), "r", "m:f", "query", dev=False)
    assert bad.message == "ArgumentValidationError: x is missing"
    assert failure_of(InvalidArgs("not an object"), "r", "m:f", "query", dev=False).message == (
        "not an object"
    )
    assert not caplog.records


def test_conflicts_and_lost_connections_are_transient() -> None:
    assert failure_of(ConflictError("gave up"), "r", "m:f", "mutation", dev=False).transient
    lost = asyncpg.ConnectionDoesNotExistError("gone")
    assert failure_of(lost, "r", "m:f", "mutation", dev=False).transient
    assert not failure_of(KeyError("k"), "r", "m:f", "mutation", dev=False).transient


def test_arguments_are_one_object_in_either_client_shape() -> None:
    assert decode_args(None) == {}
    assert decode_args([]) == {}
    assert decode_args([{"a": 1}]) == {"a": 1}
    assert decode_args({"n": {"$integer": "AQAAAAAAAAA="}}) == {"n": 1}
    assert wire_args([{"n": {"$integer": "AQAAAAAAAAA="}}]) == {"n": {"$integer": "AQAAAAAAAAA="}}


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ([{}, {}], "a single object of arguments"),
        ("x", "must be an object, got str"),
        ({"$bad": 1}, "Invalid function arguments"),
        ({"big": "x" * MAX_ARGS_BYTES}, f"exceed {MAX_ARGS_BYTES} bytes"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(raw: object, text: str) -> None:
    for parse in (decode_args, wire_args):
        with pytest.raises(InvalidArgs, match=text):
            parse(raw)


def test_a_limit_that_was_hit_is_named_in_prod_too() -> None:
    limit = LimitError("Too many documents read in a single function execution (limit: 16384).")
    failure = failure_of(limit, "r9", "m:f", "query", dev=False)
    assert failure.message == (
        "[Request ID: r9] Server Error\nUncaught LimitError: Too many documents read in a "
        "single function execution (limit: 16384)."
    )
