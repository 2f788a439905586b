"""The one error mapping and argument parsing (no database)."""

from __future__ import annotations

import pickle
from pathlib import Path

import asyncpg
import pytest

from app.db.errors import ConflictError, LimitError
from app.engine import FunctionNotFound, InvalidArgs, decode_args, wire_args
from app.engine.args import MAX_ARGS_BYTES
from app.engine.outcome import failure_of
from app.values import UNSET, ArgumentValidationError, ConvexError, Int64
from app.values.errors import stringify_for_error


def test_a_convex_error_keeps_its_data_and_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    failure = failure_of(ConvexError({"code": 1}), "r1", "m:f", "mutation", dev=False)
    assert failure.message == '[Request ID: r1] Server Error\nUncaught ConvexError: {"code":1}\n'
    assert failure.data == {"code": 1} and failure.is_convex_error
    assert failure.cause == 'Uncaught ConvexError: {"code":1}' and not failure.transient
    assert not caplog.records


def test_an_unexpected_error_hides_its_text_in_prod_and_shows_it_in_dev(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prod = failure_of(ValueError("secret detail"), "abc123", "m:f", "query", dev=False)
    assert prod.message == "[Request ID: abc123] Server Error"
    assert prod.data is UNSET and prod.cause == "Uncaught ValueError: secret detail"
    dev = failure_of(ValueError("secret detail"), "abc123", "m:f", "query", dev=True)
    assert dev.message == "[Request ID: abc123] Server Error\nUncaught ValueError: secret detail\n"
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 2 and "secret detail" in logged[0].getMessage()
    assert logged[0].request_id == "abc123"  # type: ignore[attr-defined]


def test_client_errors_are_named_plainly_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    head = "[Request ID: r] Server Error\n"
    missing = failure_of(FunctionNotFound("no f"), "r", None, None, dev=False)
    assert missing.message == head + "no f\n"
    bad = failure_of(ArgumentValidationError("x is missing"), "r", "m:f", "query", dev=False)
    assert bad.message == head + "ArgumentValidationError: x is missing\n"
    assert failure_of(InvalidArgs("not an object"), "r", "m:f", "query", dev=False).message == (
        head + "not an object\n"
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
        "single function execution (limit: 16384).\n"
    )


class FooError(ConvexError):
    """A ConvexError subclass: Convex names it by its own class."""


def _raise_in(folder: Path, source: str) -> BaseException:
    """Run `boom()` from a module file in `folder`; return what it raised."""
    path = folder / "mod.py"
    path.write_text(source)
    namespace: dict[str, object] = {"FooError": FooError, "Int64": Int64}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    try:
        namespace["boom"]()  # type: ignore[operator]
    except Exception as exc:
        return exc
    raise AssertionError("boom() did not raise")


def test_a_convex_error_is_written_as_convex_writes_it_with_the_app_s_source_lines(
    tmp_path: Path,
) -> None:
    # As Convex's own test: `Uncaught FooError: {"message":"Boom boom bop","code":"123n"}`,
    # then `    at <function> (<file>:<line>:<column>)`; int64 as `123n`, 21.0 as `21`.
    folder = tmp_path / "functions"
    folder.mkdir()
    source = (
        "def helper():\n"
        "    raise FooError({'message': 'Boom boom bop', 'code': Int64(123), 'f': 21.0})\n"
        "def boom():\n"
        "    helper()\n"
    )
    exc = _raise_in(folder, source)
    failure = failure_of(exc, "0123456789abcdef", "m:f", "query", dev=True, folder=folder)
    assert failure.message == (
        "[Request ID: 0123456789abcdef] Server Error\n"
        'Uncaught FooError: {"message":"Boom boom bop","code":"123n","f":21}\n'
        "    at helper (functions/mod.py:2:5)\n"
        "    at boom (functions/mod.py:4:5)\n"
    )
    assert failure.data == {"message": "Boom boom bop", "code": 123, "f": 21.0}
    prod = failure_of(exc, "0123456789abcdef", "m:f", "query", dev=False, folder=folder)
    assert prod.message == (  # prod: no source lines
        "[Request ID: 0123456789abcdef] Server Error\n"
        'Uncaught FooError: {"message":"Boom boom bop","code":"123n","f":21}\n'
    )


def test_values_in_error_texts_are_written_as_javascript_writes_them() -> None:
    assert stringify_for_error([1.5e-7, 1e21, float("nan"), -0.0, b"x", UNSET, True]) == (
        '[1.5e-7,1e+21,null,0,{},"undefined",true]'
    )
    assert stringify_for_error("x" * 20000).endswith("[...truncated]")


def test_an_error_re_raised_in_an_action_pickles_with_its_text() -> None:
    from app.engine.call import NestedConvexError

    nested = pickle.loads(pickle.dumps(NestedConvexError({"a": 1}, "Uncaught ConvexError: x\n")))
    assert nested.data == {"a": 1} and str(nested) == "Uncaught ConvexError: x\n"
