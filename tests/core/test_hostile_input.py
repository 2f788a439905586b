"""Hostile input on every endpoint: each is a clear error and nothing is written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from app.db import ids
from app.db.transaction import MAX_READS
from tests.conftest import ADMIN_HEADERS
from tests.core.dbcheck import table_docs, table_names
from tests.support.calls import CallFailed, error_text, mutation, query
from tests.support.servers import ServerProcess

CORE_TABLES = ("core_things", "core_strict", "core_events", "core_bulk")
# (endpoint, body builder) for a mutation that would insert {"a": 1} into core_things.
INSERT = {"table": "core_things", "doc": {"a": 1}}
ENDPOINTS: dict[str, tuple[str, dict[str, Any]]] = {
    "query": ("/api/query", {"path": "core_db:select", "args": [{"table": "core_things"}]}),
    "mutation": ("/api/mutation", {"path": "core_db:insert", "args": [INSERT]}),
    "action": ("/api/action", {"path": "core_tx:noisy_action", "args": [{}]}),
    "function": ("/api/function", {"path": "core_db:insert", "args": INSERT}),
    "run": ("/api/run/core_db/insert", {"args": INSERT}),
}


@pytest.fixture
async def guarded(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> AsyncIterator[httpx.AsyncClient]:
    """The kitchen client; after the test, no core table holds a document or a new table."""
    url = kitchen_server.env["DATABASE_URL"]
    before = await table_names(url)
    yield kitchen
    for table in CORE_TABLES:
        assert await table_docs(url, table) == [], f"{table} was written"
    assert await table_names(url) == before


def expect(r: httpx.Response, status: int, code: str, text: str) -> None:
    """A non-function error: that status and `{"code", "message"}` with `text` in it."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    assert text in body["message"], body


def expect_failure(r: httpx.Response, text: str) -> str:
    """A function error: HTTP 200, status error, no errorData, `text` in the message."""
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "error", body
    assert "errorData" not in body, body
    assert text in body["errorMessage"], body
    message: str = body["errorMessage"]
    return message


def with_args(endpoint: str, body: dict[str, Any], args: Any) -> dict[str, Any]:
    """`body` with its args replaced, in the shape the endpoint takes."""
    if endpoint in ("function", "run"):
        return {**body, "args": args}
    return {**body, "args": [args]}


async def test_malformed_json_is_a_400_on_every_endpoint(guarded: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    for label, (url, _) in ENDPOINTS.items():
        for bad in (b'{"path": ', b"{'path': 'x'}", b"\xff\xfe", b"[" * 5000 + b"]" * 5000):
            r = await guarded.post(url, content=bad, headers=headers)
            expect(r, 400, "BadJsonBody", "not valid JSON")
        r = await guarded.post(url, content=b"[1, 2]", headers=headers)
        expect(r, 400, "BadJsonBody", "must be a JSON object")
        if label != "run":
            r = await guarded.post(url, content=b"", headers=headers)
            expect(r, 400, "BadJsonBody", "not valid JSON")


async def test_a_wrong_content_type_is_a_415_on_every_endpoint(guarded: httpx.AsyncClient) -> None:
    for url, body in ENDPOINTS.values():
        r = await guarded.post(url, data={"path": "core_db:insert"})
        expect(r, 415, "BadContentType", "application/x-www-form-urlencoded")
        r = await guarded.post(
            url, content=orjson.dumps(body), headers={"content-type": "text/plain"}
        )
        expect(r, 415, "BadContentType", "text/plain")


async def test_an_unknown_format_is_a_400_on_every_endpoint(guarded: httpx.AsyncClient) -> None:
    for url, body in ENDPOINTS.values():
        r = await guarded.post(url, json={**body, "format": "xml"})
        expect(r, 400, "BadJsonBody", "Unsupported format 'xml'")


async def test_unknown_and_internal_functions_answer_the_same(guarded: httpx.AsyncClient) -> None:
    for url in ("/api/query", "/api/mutation", "/api/action", "/api/function"):
        unknown = await guarded.post(url, json={"path": "core_nope:missing", "args": {}})
        internal = await guarded.post(url, json={"path": "core_tx:record", "args": {}})
        assert unknown.status_code == internal.status_code == 200
        a, b = unknown.json(), internal.json()
        assert set(a) == set(b) == {"status", "errorMessage", "logLines"}
        assert (a["status"], a["logLines"]) == (b["status"], b["logLines"]) == ("error", [])
        assert error_text(a["errorMessage"]) == (
            "Could not find public function for 'core_nope:missing'."
        )
        assert error_text(b["errorMessage"]) == (
            "Could not find public function for 'core_tx:record'."
        )
    unknown = await guarded.post("/api/run/core_nope/missing", json={"args": {}})
    internal = await guarded.post("/api/run/core_tx/record", json={"args": {}})
    assert unknown.status_code == internal.status_code == 404
    assert internal.json() == {
        **unknown.json(),
        "message": unknown.json()["message"].replace("core_nope/missing", "core_tx/record"),
    }
    # An internal function of another kind is still unknown to a non-admin caller.
    r = await guarded.post("/api/query", json={"path": "core_tx:record", "args": {}})
    expect_failure(r, "Could not find public function for 'core_tx:record'")


async def test_a_function_called_as_another_kind_says_what_it_is(
    guarded: httpx.AsyncClient,
) -> None:
    cases = [
        ("/api/query", "core_db:insert", INSERT, "Query", "Mutation"),
        ("/api/mutation", "core_tx:good_returns", {}, "Mutation", "Query"),
        ("/api/action", "core_tx:good_returns", {}, "Action", "Query"),
        ("/api/query", "core_tx:noisy_action", {}, "Query", "Action"),
        ("/api/mutation", "core_tx:noisy_action", {}, "Mutation", "Action"),
        ("/api/action", "core_db:insert", INSERT, "Action", "Mutation"),
    ]
    for url, path, args, called, defined in cases:
        r = await guarded.post(url, json={"path": path, "args": args})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["status"], body["logLines"], "errorData" in body) == ("error", [], False)
        assert error_text(body["errorMessage"]) == (
            f"Trying to execute {path} as {called}, but it is defined as {defined}."
        )
    # The admin key sees internal functions, so it is told their kind too.
    r = await guarded.post(
        "/api/query", json={"path": "core_tx:record", "args": {}}, headers=ADMIN_HEADERS
    )
    expect_failure(r, "Trying to execute core_tx:record as Query, but it is defined as Mutation.")


async def test_unknown_routes_and_methods_are_json_errors(guarded: httpx.AsyncClient) -> None:
    expect(await guarded.post("/api/nope", json={}), 404, "NotFound", "/api/nope")
    expect(await guarded.get("/api/query"), 405, "MethodNotAllowed", "GET")
    expect(await guarded.get("/api/run/core_db/insert"), 405, "MethodNotAllowed", "GET")


async def test_bad_bodies_are_clear_400s(guarded: httpx.AsyncClient) -> None:
    cases = [
        ({"args": {}}, "needs a string `path`"),
        ({"path": 5, "args": {}}, "needs a string `path`"),
        ({"path": "x" * 2000, "args": {}}, "needs a string `path`"),
        ({"path": "core_db:insert", "args": "x"}, "must be an object, got str"),
        ({"path": "core_db:insert", "args": [INSERT, INSERT]}, "a single object of arguments"),
        ({"path": "core_db:insert", "args": 5}, "must be an object"),
    ]
    for body, text in cases:
        code = "InvalidArgs" if "args" in text or "object" in text else "BadJsonBody"
        expect(await guarded.post("/api/mutation", json=body), 400, code, text)
    r = await guarded.post("/api/run/core_db/insert", json={"args": [INSERT]})
    expect(r, 400, "InvalidArgs", "must be a JSON object")
    r = await guarded.post("/api/run/core_db/insert", json={"args": INSERT, "path": "x"})
    expect(r, 400, "BadJsonBody", "Unknown field(s) path")


async def test_wrong_argument_types_fail_validation_on_every_endpoint(
    guarded: httpx.AsyncClient,
) -> None:
    wrong = {
        "query": {"table": 5},
        "mutation": {"table": ["core_things"], "doc": {"a": 1}},
        "action": {"unexpected": True},
        "function": {"table": "core_things", "doc": {"a": 1}, "extra": 1},
        "run": {"table": None, "doc": {"a": 1}},
    }
    for label, (url, body) in ENDPOINTS.items():
        r = await guarded.post(url, json=with_args(label, body, wrong[label]))
        expect_failure(r, "ArgumentValidationError")


async def test_dollar_fields_in_args_are_rejected_before_running(
    guarded: httpx.AsyncClient,
) -> None:
    for label, (url, body) in ENDPOINTS.items():
        for args in (
            {"$table": "core_things"},
            {"table": "core_things", "doc": {"$a": 1}},
            {"table": "core_things", "doc": {"a": [{"$set": []}]}},
            {"table": "core_things", "doc": {"a": {"$integer": "AQ=="}}},
            {"table": "core_things", "doc": {"a": {"$float": "AAAAAAAA8D8="}}},
            {"table": "core_things", "doc": {"a": {"$bytes": "AQ==", "b": 1}}},
        ):
            r = await guarded.post(url, json=with_args(label, body, args))
            expect(r, 400, "InvalidArgs", "Invalid function arguments")


async def test_dollar_and_underscore_fields_in_documents_are_refused(
    guarded: httpx.AsyncClient,
) -> None:
    for field, text in (
        ("$bad", "field names must not start with '$'"),
        ("_bad", "reserved for system fields"),
        ("", "field names must not be empty"),
        ("tab\there", "printable ASCII"),
        ("é", "printable ASCII"),
        ("x" * 1025, "at most 1024 characters"),
    ):
        r = await guarded.post(
            "/api/mutation",
            json={
                "path": "core_db:insert_field",
                "args": [{"table": "core_things", "field": field, "value": 1}],
            },
        )
        expect_failure(r, text)


async def test_nesting_deeper_than_64_levels_is_refused(
    guarded: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    def nested(levels: int) -> Any:
        value: Any = 1
        for _ in range(levels):
            value = [value]
        return value

    # Arguments: the args object plus 63 arrays is 64 levels; one more is too deep.
    ok = await guarded.post(
        "/api/query", json={"path": "core_tx:echo", "args": [{"value": nested(63)}]}
    )
    assert ok.json()["value"] == nested(63)
    for label, (url, body) in ENDPOINTS.items():
        r = await guarded.post(url, json=with_args(label, body, {"value": nested(64)}))
        expect(r, 400, "InvalidArgs", "nesting depth exceeds 64")
    # Documents: the document plus 63 arrays is fine, 64 arrays is one level too deep.
    r = await guarded.post(
        "/api/mutation",
        json={"path": "core_db:insert_nested", "args": [{"table": "core_things", "depth": 64}]},
    )
    expect_failure(r, "nesting depth exceeds 64")
    await table_docs(kitchen_server.env["DATABASE_URL"], "core_things")


async def test_a_document_at_the_nesting_limit_is_stored(kitchen: httpx.AsyncClient) -> None:
    doc_id = await mutation(kitchen, "core_db:insert_nested", {"table": "core_things", "depth": 63})
    doc = await query(kitchen, "core_db:get", {"id": doc_id})
    depth, value = 0, doc["x"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    assert depth == 63


async def test_an_oversized_document_is_refused(guarded: httpx.AsyncClient) -> None:
    r = await guarded.post(
        "/api/mutation",
        json={
            "path": "core_db:insert_big",
            "args": [{"table": "core_things", "size": 1024 * 1024}],
        },
    )
    expect_failure(r, "Document is too large for table 'core_things'")
    expect_failure(r, "limit: 1048576 bytes")


async def test_arguments_over_8_mib_are_a_413_on_every_endpoint(guarded: httpx.AsyncClient) -> None:
    big = "x" * (8 * 1024 * 1024)
    for label, (url, body) in ENDPOINTS.items():
        r = await guarded.post(
            url, json=with_args(label, body, {"table": "core_things", "doc": {"a": big}})
        )
        expect(r, 413, "ArgumentsTooLarge", "exceeds 8388608 bytes")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"path": "core_db:insert", "args": [{"table": "core_things", "doc": {"a": "'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}}]}'

    # Without a Content-Length (chunked), the limit holds while reading.
    r = await guarded.post(
        "/api/mutation", content=chunks(), headers={"content-type": "application/json"}
    )
    expect(r, 413, "ArgumentsTooLarge", "exceeds 8388608 bytes")


async def test_invalid_ids_are_clear_errors(guarded: httpx.AsyncClient) -> None:
    other_table = ids.new_id("core_strict")
    missing_table = ids.new_id("core_no_such_table")
    for value in ("garbage", "'; DROP TABLE docs.core_things; --", other_table, "", 5, None):
        r = await guarded.post(
            "/api/mutation", json={"path": "core_tx:set_n", "args": [{"id": value, "n": 1}]}
        )
        expect_failure(r, "ArgumentValidationError")
        expect_failure(r, 'v.id("core_things")')
    # Unvalidated ids reach ctx.db: malformed ones are refused, unknown ones are not found.
    r = await guarded.post(
        "/api/query", json={"path": "core_db:get", "args": [{"id": "x' OR 1=1"}]}
    )
    expect_failure(r, "is not a valid document id")
    assert await query(guarded, "core_db:get", {"id": missing_table}) is None
    assert await query(guarded, "core_db:get", {"id": other_table}) is None
    with pytest.raises(CallFailed) as info:
        await mutation(guarded, "core_db:patch", {"id": missing_table, "fields": {"a": 1}})
    assert "Update on nonexistent document ID" in info.value.body["errorMessage"]
    # An id with non-zero padding bits names no document (ids have one spelling).
    real = await mutation(
        guarded, "core_db:insert", {"table": "core_events", "doc": {"event": "e"}}
    )
    alias = real[:-1] + ("1" if real[-1] == "0" else "h")
    assert await query(guarded, "core_db:normalize", {"table": "core_events", "id": alias}) is None
    await mutation(guarded, "core_db:delete", {"id": real})


INJECTIONS = [
    'core_things"; DROP TABLE docs."core_events"; --',
    "core_things' OR '1'='1",
    "core_things; SELECT pg_sleep(5)",
    "docs.core_things",
    "pg_catalog.pg_user",
    "../core_things",
    "core_things\x00",
    "_convect_tables",
    "t" * 64,
    "Core Things",
]


async def test_injection_through_table_names_is_refused(guarded: httpx.AsyncClient) -> None:
    for name in INJECTIONS:
        r = await guarded.post(
            "/api/query", json={"path": "core_db:select", "args": [{"table": name}]}
        )
        expect_failure(r, "Invalid table name")
        r = await guarded.post(
            "/api/mutation", json={"path": "core_db:insert", "args": [{"table": name, "doc": {}}]}
        )
        expect_failure(r, "Invalid table name")


async def test_injection_through_index_names_is_refused(guarded: httpx.AsyncClient) -> None:
    for name in [
        'by_n"; DROP TABLE docs."core_events"; --',
        "by_n' --",
        "core_things__by_n",
        "BY_N",
    ]:
        r = await guarded.post(
            "/api/query",
            json={"path": "core_db:select", "args": [{"table": "core_things", "index": name}]},
        )
        expect_failure(r, f"Index core_things.{name} not found")


async def test_injection_through_range_and_order_is_refused(guarded: httpx.AsyncClient) -> None:
    for field in ["n) OR (1=1", "n' --", "group"]:
        r = await guarded.post(
            "/api/query",
            json={
                "path": "core_db:select",
                "args": [{"table": "core_things", "index": "by_n", "range": [["eq", field, 1]]}],
            },
        )
        expect_failure(r, "does not match the index's fields")
    r = await guarded.post(
        "/api/query",
        json={"path": "core_db:select", "args": [{"table": "core_things", "order": "asc; DROP"}]},
    )
    expect_failure(r, 'order must be "asc" or "desc"')


async def test_hostile_field_names_are_plain_data(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    hostile = "a'); DROP TABLE core_events; --"
    other = await mutation(
        kitchen, "core_db:insert", {"table": "core_events", "doc": {"event": "x"}}
    )
    doc_id = await mutation(
        kitchen, "core_db:insert_field", {"table": "core_things", "field": hostile, "value": 7}
    )
    found = await query(
        kitchen,
        "core_db:select",
        {"table": "core_things", "filter": ["eq", {"field": hostile}, 7]},
    )
    assert [(d["_id"], d[hostile]) for d in found] == [(doc_id, 7.0)]
    for field in ("n') OR true OR ('", 'a" OR 1=1 --', "{n}", "n,m"):
        assert (
            await query(
                kitchen,
                "core_db:select",
                {"table": "core_things", "filter": ["neq", {"field": field}, {"unset": True}]},
            )
            == []
        )
    events = await table_docs(kitchen_server.env["DATABASE_URL"], "core_events")
    assert [d["_id"] for d in events] == [other]


async def test_nul_characters_are_a_clear_error_not_a_database_failure(
    guarded: httpx.AsyncClient,
) -> None:
    r = await guarded.post(
        "/api/mutation",
        json={
            "path": "core_db:insert",
            "args": [{"table": "core_things", "doc": {"a": "x\u0000y"}}],
        },
    )
    expect_failure(r, "cannot contain the NUL character")
    r = await guarded.post(
        "/api/query",
        json={
            "path": "core_db:select",
            "args": [{"table": "core_things", "filter": ["eq", {"field": "a"}, "x\u0000"]}],
        },
    )
    expect_failure(r, "cannot contain the NUL character")
    # A backslash followed by "u0000" is ordinary text.
    r = await guarded.post(
        "/api/query", json={"path": "core_tx:echo", "args": [{"value": "\\u0000"}]}
    )
    assert r.json()["value"] == "\\u0000"


async def test_hostile_calls_leave_the_read_limit_intact(guarded: httpx.AsyncClient) -> None:
    # take() beyond the read limit is only a bound, not a way around it.
    docs = await query(
        guarded, "core_db:select", {"table": "core_things", "mode": "take", "n": MAX_READS * 4}
    )
    assert docs == []
