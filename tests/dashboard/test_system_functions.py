"""The dashboard's admin-only system functions (`_system/dashboard:*`) over the HTTP API."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.calls import CallFailed, action, mutation, query
from tests.support.servers import ADMIN_KEY, ServerProcess
from tests.support.ws import SyncClient

ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}
SYS = "_system/dashboard:"

CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("query", "page", {"table": "books", "paginationOpts": {"numItems": 5, "cursor": None}}),
    ("query", "document", {"id": "x"}),
    ("query", "table", {"table": "books"}),
    ("query", "scheduled", {}),
    ("query", "crons", {}),
    ("query", "files", {}),
    ("mutation", "insert", {"table": "books", "document": {"title": "t", "year": 1.0}}),
    ("mutation", "replace", {"id": "x", "document": {}}),
    ("mutation", "remove", {"ids": []}),
    ("mutation", "remove_matching", {"table": "books"}),
    ("mutation", "cancel", {"id": "x"}),
    ("mutation", "upload_url", {}),
    ("mutation", "delete_file", {"id": "x"}),
    ("action", "tables", {}),
    ("action", "functions", {}),
    ("action", "schema", {}),
]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Convex not-the-admin-key"}])
async def test_every_system_function_is_refused_without_the_admin_key(
    dash: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for kind, name, args in CALLS:
        r = await dash.post(
            f"/api/{kind}",
            json={"path": SYS + name, "args": args, "format": "json"},
            headers=headers,
        )
        body = r.json()
        assert body.get("status") != "success", (name, body)
        assert "value" not in body, (name, body)
    assert await query(dash, "library:books") == []  # the refused insert wrote nothing


async def test_a_table_page_filters_by_field_and_index_range_and_links_ids(
    dash: httpx.AsyncClient,
) -> None:
    author = await mutation(
        dash, SYS + "insert", {"table": "authors", "document": {"name": "Le Guin"}}, headers=ADMIN
    )
    for year in (1968.0, 1969.0, 1974.0):
        await mutation(
            dash,
            SYS + "insert",
            {"table": "books", "document": {"title": f"b{year:g}", "year": year, "author": author}},
            headers=ADMIN,
        )
    base = {"table": "books", "paginationOpts": {"numItems": 10, "cursor": None}}
    ranged = await query(
        dash,
        SYS + "page",
        {**base, "index": "by_year", "order": "asc", "range": [{"field": "year", "op": "gte", "value": 1969.0}]},
        headers=ADMIN,
    )  # fmt: skip
    assert [d["year"] for d in ranged["page"]] == [1969.0, 1974.0]
    assert ranged["idPaths"] == {
        "author": "authors",
        "coauthors[]": "authors",
        "credits.editor": "authors",
    }
    filtered = await query(
        dash, SYS + "page",
        {**base, "filters": [{"field": "title", "op": "eq", "value": "b1968"}]}, headers=ADMIN,
    )  # fmt: skip
    assert [d["title"] for d in filtered["page"]] == ["b1968"]
    found = await query(dash, SYS + "document", {"id": author}, headers=ADMIN)
    assert found["table"] == "authors" and found["document"]["name"] == "Le Guin"
    with pytest.raises(CallFailed, match="unknown operator"):
        await query(
            dash, SYS + "page", {**base, "filters": [{"field": "x", "op": "like", "value": 1}]},
            headers=ADMIN,
        )  # fmt: skip


async def test_ids_nested_in_documents_are_linked_by_the_schema_or_by_their_values(
    dash: httpx.AsyncClient,
) -> None:
    author = await mutation(
        dash, SYS + "insert", {"table": "authors", "document": {"name": "Le Guin"}}, headers=ADMIN
    )
    book = await mutation(
        dash,
        SYS + "insert",
        {
            "table": "books",
            "document": {
                "title": "t",
                "year": 1.0,
                "coauthors": [author],
                "credits": {"editor": author, "note": "n"},
            },
        },
        headers=ADMIN,
    )
    found = await query(dash, SYS + "document", {"id": book}, headers=ADMIN)
    assert found["idPaths"]["credits.editor"] == "authors"
    assert found["idPaths"]["coauthors[]"] == "authors"
    # `scraps` is `v.any()`: the ids are found among the page's values, at any depth
    await mutation(
        dash,
        SYS + "insert",
        {"table": "scraps", "document": {"refs": [book], "x": {"y": [{"z": author}]}}},
        headers=ADMIN,
    )
    page = await query(
        dash,
        SYS + "page",
        {"table": "scraps", "paginationOpts": {"numItems": 5, "cursor": None}},
        headers=ADMIN,
    )
    assert page["idPaths"] == {"refs[]": "books", "x.y[].z": "authors"}


async def test_the_table_query_names_the_fields_and_the_indexes_that_sort_by_them(
    dash: httpx.AsyncClient,
) -> None:
    books = await query(dash, SYS + "table", {"table": "books"}, headers=ADMIN)
    assert books["fields"] == ["title", "year", "author", "coauthors", "credits"]
    assert books["indexes"] == [{"name": "by_year", "fields": ["year"]}]
    assert books["schema"] is True
    scraps = await query(dash, SYS + "table", {"table": "scraps"}, headers=ADMIN)
    assert scraps == {"fields": [], "indexes": [], "schema": False}


async def test_an_edit_that_breaks_the_schema_is_refused_with_the_reason_and_changes_nothing(
    dash: httpx.AsyncClient,
) -> None:
    book = await mutation(
        dash, SYS + "insert", {"table": "books", "document": {"title": "Dune", "year": 1965.0}},
        headers=ADMIN,
    )  # fmt: skip
    with pytest.raises(CallFailed) as refused:
        await mutation(
            dash, SYS + "replace", {"id": book, "document": {"title": 7, "year": 1965.0}},
            headers=ADMIN,
        )  # fmt: skip
    assert "title" in str(refused.value) and "does not match the schema" in str(refused.value.data)
    with pytest.raises(CallFailed):
        await mutation(
            dash,
            SYS + "insert",
            {"table": "books", "document": {"title": "no year"}},
            headers=ADMIN,
        )
    assert [b["title"] for b in await query(dash, "library:books")] == ["Dune"]
    await mutation(
        dash, SYS + "replace", {"id": book, "document": {"title": "Dune Messiah", "year": 1969.0}},
        headers=ADMIN,
    )  # fmt: skip
    assert [b["title"] for b in await query(dash, "library:books")] == ["Dune Messiah"]


async def test_bulk_delete_removes_only_the_filtered_set(dash: httpx.AsyncClient) -> None:
    for i in range(7):
        year = 2000.0 if i < 5 else 1990.0
        await mutation(
            dash, SYS + "insert", {"table": "books", "document": {"title": f"t{i}", "year": year}},
            headers=ADMIN,
        )  # fmt: skip
    out = await mutation(
        dash, SYS + "remove_matching",
        {"table": "books", "filters": [{"field": "year", "op": "eq", "value": 2000.0}]},
        headers=ADMIN,
    )  # fmt: skip
    assert out == {"deleted": 5, "done": True}
    assert sorted(b["title"] for b in await query(dash, "library:books")) == ["t5", "t6"]


async def test_tables_functions_and_schema_describe_the_deployment(
    dash: httpx.AsyncClient,
) -> None:
    await mutation(
        dash, SYS + "insert", {"table": "authors", "document": {"name": "A"}}, headers=ADMIN
    )
    tables = {t["name"]: t for t in await action(dash, SYS + "tables", {}, headers=ADMIN)}
    assert tables["authors"]["count"] == 1 and not tables["authors"]["estimated"]
    assert tables["books"]["count"] == 0
    fns = {f["path"]: f for f in await action(dash, SYS + "functions", {}, headers=ADMIN)}
    add = fns["library:add_book"]
    assert (add["kind"], add["visibility"]) == ("mutation", "internal")
    assert json.loads(add["args"])["required"] == ["title", "year"]
    assert not any(p.startswith("_system/") for p in fns)
    schema = await action(dash, SYS + "schema", {}, headers=ADMIN)
    books = next(t for t in schema["tables"] if t["table"] == "books")
    assert books["indexes"] == [
        {"name": "by_year", "fields": ["year"], "state": "ready", "staged": False}
    ]


async def test_the_schema_view_shows_what_the_last_deploys_changed(
    dash: httpx.AsyncClient,
) -> None:
    deploys = (await action(dash, SYS + "schema", {}, headers=ADMIN))["deploys"]
    first = deploys[-1]  # the `convect deploy` that set the test app up
    assert first["source"] == "deploy" and first["first"] is True
    assert first["changes"]["tablesAdded"] == ["authors", "books", "scraps"]
    assert {"table": "books", "kind": "index", "name": "by_year", "fields": ["year"]} in first[
        "changes"
    ]["indexesAdded"]
    added = {f["path"]: f for f in first["changes"]["functionsAdded"]}
    assert added["library:add_book"] == {
        "path": "library:add_book",
        "kind": "mutation",
        "visibility": "internal",
    }
    assert isinstance(first["deployedAt"], float)


async def test_a_scheduled_function_is_listed_and_cancelled(dash: httpx.AsyncClient) -> None:
    job = await mutation(dash, "library:schedule_reminder", {"note": "tea"})
    listed = await query(dash, SYS + "scheduled", {"state": "pending"}, headers=ADMIN)
    assert [(j["_id"], j["name"]) for j in listed] == [(job, "library:remind")]
    await mutation(dash, SYS + "cancel", {"id": job}, headers=ADMIN)
    (row,) = await query(dash, SYS + "scheduled", {}, headers=ADMIN)
    assert row["state"]["kind"] == "canceled"


async def test_crons_are_listed_with_schedule_and_next_run(dash: httpx.AsyncClient) -> None:
    (cron,) = await query(dash, SYS + "crons", {}, headers=ADMIN)
    assert (cron["name"], cron["schedule"], cron["function"]) == (
        "new year tidy", "0 0 1 1 *", "library:tidy",
    )  # fmt: skip
    next_run = datetime.fromtimestamp(cron["nextRun"] / 1000, UTC)
    assert (next_run.month, next_run.day, next_run.hour, next_run.minute) == (1, 1, 0, 0)
    assert cron["lastRun"] is None


async def test_the_dashboard_page_loads_nothing_from_elsewhere(dash: httpx.AsyncClient) -> None:
    r = await dash.get("/dashboard/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "http://" not in r.text and "https://" not in r.text
    for asset in ("app.js", "vendor/convex.js", "style.css"):
        assert (await dash.get(f"/dashboard/{asset}")).status_code == 200
    assert (await dash.get("/dashboard/../../settings.py")).status_code == 404
    redirect = await dash.get("/dashboard")
    assert redirect.status_code == 308 and redirect.headers["location"] == "/dashboard/"


async def test_a_live_page_that_overgrows_comes_back_to_its_size(
    dash: httpx.AsyncClient, dashboard_server: ServerProcess
) -> None:
    c = await SyncClient.open(dashboard_server.url)
    await c.send(
        {"type": "Authenticate", "tokenType": "Admin", "value": ADMIN_KEY, "baseVersion": 0}
    )
    opts = {"numItems": 5, "cursor": None}
    qid = await c.add(SYS + "page", {"table": "books", "order": "desc", "paginationOpts": opts})
    await c.wait_query_set()
    assert c.value(qid)["isDone"] is True  # an empty table: the page's end is the table's end
    for i in range(12):  # all land inside the live page (newest first)
        await mutation(
            dash, SYS + "insert", {"table": "books", "document": {"title": f"n{i}", "year": 1.0}},
            headers=ADMIN,
        )  # fmt: skip
    deadline = asyncio.get_running_loop().time() + 10
    while [d["title"] for d in c.value(qid)["page"]][:1] != ["n11"]:
        await c.recv(timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
    page = c.value(qid)
    titles = [d["title"] for d in page["page"]]
    assert 5 <= len(titles) <= 10  # grew past 10, then came back to a fresh page of 5
    assert titles == [f"n{i}" for i in range(11, 11 - len(titles), -1)]
    assert page["isDone"] is False
    await c.close()


async def test_a_socket_without_the_admin_key_cannot_subscribe_to_a_system_query(
    dash: httpx.AsyncClient, dashboard_server: ServerProcess
) -> None:
    await mutation(
        dash, SYS + "insert", {"table": "books", "document": {"title": "x", "year": 1.0}},
        headers=ADMIN,
    )  # fmt: skip
    c = await SyncClient.open(dashboard_server.url)
    qid = await c.add(
        SYS + "page", {"table": "books", "paginationOpts": {"numItems": 5, "cursor": None}}
    )
    await c.wait_query_set()
    assert c.results[qid]["type"] == "QueryFailed"
    assert "Could not find public function" in c.results[qid]["errorMessage"]
    await c.close()
