"""`convect dev` reloads edited functions without dropping sockets; broken code never goes live."""

from __future__ import annotations

import re
from typing import Any

import httpx
from websockets.protocol import State

from tests.dx.conftest import DevServer, original
from tests.support.deadline import deadline
from tests.support.ws import SyncClient


def notes_version(version: int) -> str:
    """The test app's notes module with another VERSION."""
    return original("notes.py").replace("VERSION = 1\n", f"VERSION = {version}\n")


def http_query(dev: DevServer, path: str) -> Any:
    body = httpx.post(f"{dev.url}/api/query", json={"path": path, "args": {}}, timeout=10).json()
    assert body["status"] == "success", body
    return body["value"]


def reloads(dev: DevServer) -> int:
    return dev.server.log().count("reloaded ")


def test_an_edited_function_reaches_a_subscribed_official_client_and_the_http_cache(
    dev: DevServer,
) -> None:
    from convex import ConvexClient

    dev.write("notes.py", notes_version(10))
    dev.wait_until(lambda: http_query(dev, "notes:count")["version"] == 10)
    with deadline(30):
        client = ConvexClient(dev.url)
        sub = client.subscribe("notes:list", {})
        assert next(sub)["version"] == 10
        # notes:count is now a cached HTTP result computed by the old code.
        assert http_query(dev, "notes:count")["version"] == 10
        assert http_query(dev, "notes:count")["version"] == 10
        dev.write("notes.py", notes_version(11))
        value = next(sub)
        while value["version"] != 11:
            value = next(sub)
        assert value == {"version": 11, "notes": value["notes"]}
    assert http_query(dev, "notes:count")["version"] == 11
    assert http_query(dev, "notes:list")["version"] == 11


async def test_broken_code_keeps_the_last_good_version_serving_and_names_file_and_line(
    dev: DevServer,
) -> None:
    dev.write("notes.py", notes_version(20))
    dev.wait_until(lambda: http_query(dev, "notes:list")["version"] == 20)
    socket = await SyncClient.open(dev.url)
    try:
        qid = await socket.add("notes:list")
        await socket.wait_query_set()
        assert socket.value(qid)["version"] == 20

        broken = notes_version(21) + "\n\ndef broken(:\n    pass\n"
        line = broken.splitlines().index("def broken(:") + 1
        failures = dev.server.log().count("reload failed")
        dev.write("notes.py", broken)
        out = dev.wait_log(lambda text: text.count("reload failed") > failures)
        assert re.search(rf"notes\.py:{line}: SyntaxError", out), out
        assert "def broken(:" in out

        # The old code still serves: over HTTP, and on the same socket, which stays open.
        assert http_query(dev, "notes:list")["version"] == 20
        response = await socket.mutation("notes:add", {"text": "while broken"})
        assert response["success"] is True
        assert socket.value(qid)["version"] == 20
        assert "while broken" in socket.value(qid)["notes"]

        failing = notes_version(22) + "\nVALUE = undefined_name\n"
        line = failing.splitlines().index("VALUE = undefined_name") + 1
        failures = dev.server.log().count("reload failed")
        dev.write("notes.py", failing)
        out = dev.wait_log(lambda text: text.count("reload failed") > failures)
        assert re.search(rf"notes\.py:{line}: NameError", out), out
        assert http_query(dev, "notes:list")["version"] == 20

        dev.write("notes.py", notes_version(23))
        while socket.value(qid)["version"] != 23:
            await socket.recv_type("Transition", timeout=15)
        assert socket.conn.state is State.OPEN
        assert socket.value(qid)["notes"][-1] == "while broken"
    finally:
        await socket.close()
        dev.write("notes.py", dev.original("notes.py"))


def test_a_refused_schema_keeps_the_last_good_version_serving(dev: DevServer) -> None:
    httpx.post(f"{dev.url}/api/mutation", json={"path": "notes:add", "args": {"text": "t"}})
    dev.write("notes.py", notes_version(30))
    dev.wait_until(lambda: http_query(dev, "notes:list")["version"] == 30)
    refusals = dev.server.log().count("schema push refused")
    try:
        dev.write("schema.py", dev.original("schema.py").replace("v.string()", "v.number()"))
        out = dev.wait_log(lambda text: text.count("schema push refused") > refusals)
        assert "does not match the schema" in out
        dev.write("notes.py", notes_version(31))  # reloads again: still refused
        dev.wait_log(lambda text: text.count("schema push refused") > refusals + 1)
        assert http_query(dev, "notes:list")["version"] == 30
    finally:
        dev.write("schema.py", dev.original("schema.py"))
        dev.wait_until(lambda: http_query(dev, "notes:list")["version"] == 31)


def test_every_call_is_logged_on_one_line(dev: DevServer) -> None:
    text = "logged-" + str(reloads(dev))
    httpx.post(f"{dev.url}/api/mutation", json={"path": "notes:add", "args": {"text": text}})
    out = dev.wait_log(lambda out: f"'adding {text}'" in out)
    [line] = [ln for ln in out.splitlines() if f"'adding {text}'" in ln]
    assert re.match(
        r"^\d\d:\d\d:\d\d\.\d{3} M notes:add \d+\.\dms ok  \[LOG\] 'adding logged-\d+'$", line
    ), line
