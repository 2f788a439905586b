"""Function error texts as Convex writes them, through the official clients.

Ported from Convex's own integration test (`customErrors.test.ts`): the same functions
(tests/apps/kitchen/custom_errors.py), the same expectations, with Python's names for
the error classes and the functions in the source lines.
"""

from __future__ import annotations

import re

import pytest
from convex import ConvexError
from convex.http_client import ConvexExecutionError, ConvexHttpClient

from tests.support.npm import run_script
from tests.support.servers import ServerProcess

FILE = r"kitchen/custom_errors\.py:\d+:\d+"


def at(name: str, file: str = FILE, *, waiting: bool = False) -> str:
    """A source line as Convex writes a stack frame."""
    return rf"    at {'async ' if waiting else ''}{name} \({file}\)"


def matching(body: str) -> re.Pattern[str]:
    """Convex's `matchingErrorMessage`: the client's prefix and suffix are optional."""
    return re.compile(
        r"^(\[CONVEX [QMA]\([a-zA-Z_:]+\)\] )?\[Request ID: [a-f0-9]{16}\] Server Error\n"
        + body
        + r"(\n\n  Called by client)?$"
    )


BOOM = {"message": "Boom boom bop", "code": "123n"}
NESTED = "\n\n"
EXPECTED: dict[str, tuple[str, object]] = {
    "queryThrowingConvexError": (
        "Uncaught ConvexError: Boom boom bop\n" + at("query_throwing_convex_error"),
        "Boom boom bop",
    ),
    "queryThrowingNormalError": (
        "Uncaught ValueError: Normal error\n" + at("query_throwing_normal_error"),
        None,
    ),
    "queryThrowingConvexErrorSubclass": (
        re.escape('Uncaught FooError: {"message":"Boom boom bop","code":"123n"}')
        + "\n"
        + at("query_throwing_convex_error_subclass"),
        BOOM,
    ),
    "mutationThrowingConvexError": (
        re.escape('Uncaught ConvexError: {"message":"Boom boom bop","code":"123n","n":21}')
        + "\n"
        + at("mutation_throwing_convex_error"),
        {**BOOM, "n": 21},
    ),
    "actionThrowingConvexError": (
        "Uncaught ConvexError: Boom boom bop\n" + at("action_throwing_convex_error"),
        "Boom boom bop",
    ),
    "actionCallingQueryThrowingConvexError": (
        "Uncaught ConvexError: Uncaught ConvexError: Boom boom bop\n"
        + at("inner_query")
        + NESTED
        + at("action_calling_query_throwing_convex_error", waiting=True),
        "Boom boom bop",
    ),
    "actionCallingQueryThrowingConvexErrorSubclass": (
        "Uncaught ConvexError: "
        + re.escape('Uncaught FooError: {"message":"Boom boom bop","code":"123n"}')
        + "\n"
        + at("inner_query_subclass")
        + NESTED
        + at("action_calling_query_throwing_convex_error_subclass", waiting=True),
        BOOM,
    ),
    "actionCallingMutationThrowingConvexError": (
        "Uncaught ConvexError: "
        + re.escape('Uncaught ConvexError: {"message":"Boom boom bop","code":"123n"}')
        + "\n"
        + at("inner_mutation")
        + NESTED
        + at("action_calling_mutation_throwing_convex_error", waiting=True),
        BOOM,
    ),
    "actionCallingQueryThrowingError": (
        "Uncaught Error: Uncaught RuntimeError: component kaboom\n"
        + at("inner_crash")
        + NESTED
        + at("action_calling_query_throwing_error", waiting=True),
        None,
    ),
}


@pytest.fixture(scope="module")
def observed(kitchen_server: ServerProcess) -> dict[str, object]:
    out: dict[str, object] = run_script(
        "custom_errors.mjs", kitchen_server.url, kitchen_server.site_url
    )
    return out


@pytest.mark.parametrize("case", sorted(EXPECTED))
@pytest.mark.parametrize("transport", ["http", "socket"])
def test_the_npm_clients_see_convex_s_error_text(
    observed: dict[str, dict[str, dict[str, dict[str, object]]]], case: str, transport: str
) -> None:
    body, data = EXPECTED[case]
    seen = observed["cases"][case][transport]
    assert seen["threw"], seen
    message = str(seen["message"]).strip()
    assert matching(body).match(message), message
    assert seen["isConvexError"] is (data is not None), seen
    assert seen["data"] == data


def test_an_http_action_s_uncaught_convex_error_answers_convex_s_json(
    observed: dict[str, dict[str, object]],
) -> None:
    action = observed["httpAction"]
    assert action["status"] == 500
    assert str(action["contentType"]).startswith("application/json")
    body = action["body"]
    assert isinstance(body, dict) and set(body) == {"code", "trace", "data"}, body
    assert re.fullmatch(
        r"\[Request ID: [a-f0-9]{16}\] Server Error: Uncaught ConvexError: Hello world!",
        body["code"],
    ), body
    assert body["data"] == "Hello world!"
    assert re.fullmatch(
        r"Uncaught ConvexError: Hello world!\n"
        + at("failer_custom", r"kitchen/http\.py:\d+:\d+")
        + "\n",
        body["trace"],
    ), body


def test_the_pypi_client_sees_the_same_texts(kitchen_server: ServerProcess) -> None:
    client = ConvexHttpClient(kitchen_server.url)
    with pytest.raises(ConvexExecutionError) as crash:
        client.query("custom_errors:query_throwing_normal_error")
    assert matching(EXPECTED["queryThrowingNormalError"][0]).match(str(crash.value).strip())
    with pytest.raises(ConvexError) as convex:
        client.action("custom_errors:action_calling_query_throwing_convex_error_subclass")
    assert convex.value.data["message"] == "Boom boom bop"
