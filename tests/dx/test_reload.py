"""`convect dev` reloads edited functions without dropping sockets; broken code never goes live."""

from __future__ import annotations

import re
from typing import Any

import httpx
from websockets.protocol import State

from tests.dx.conftest import DevServer, original
from tests.support.deadline import deadline
from tests.support.servers import ADMIN_KEY
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


def deploy_history(dev: DevServer) -> list[dict[str, Any]]:
    """The deploys the dashboard's Schema view shows, newest first."""
    body = httpx.post(
        f"{dev.url}/api/action",
        json={"path": "_system/dashboard:schema", "args": {}},
        headers={"Authorization": f"Convex {ADMIN_KEY}"},
        timeout=10,
    ).json()
    assert body["status"] == "success", body
    history: list[dict[str, Any]] = body["value"]["deploys"]
    return history


def test_a_reload_that_changes_a_signature_is_recorded_and_one_that_does_not_is_not(
    dev: DevServer,
) -> None:
    assert deploy_history(dev)  # `convect dev` recorded its start
    added = notes_version(40) + (
        '\n\n@query(args={"n": v.number()})\nasync def echo(ctx, args):\n'
        '    """A new function."""\n    return args["n"]\n'
    )
    dev.write("notes.py", added)
    dev.wait_log(lambda text: "deploy: added query notes:echo" in text)
    latest = deploy_history(dev)[0]
    assert latest["source"] == "dev" and latest["first"] is False
    assert latest["changes"]["functionsAdded"] == [
        {"path": "notes:echo", "kind": "query", "visibility": "public"}
    ]
    dev.write("notes.py", added.replace('{"n": v.number()}', '{"n": v.string()}'))
    dev.wait_log(lambda text: "deploy: changed args of notes:echo" in text)
    assert deploy_history(dev)[0]["changes"]["functionsChanged"] == [
        {"path": "notes:echo", "changed": ["args"]}
    ]
    # A body-only edit is reloaded but adds nothing to the history.
    count = reloads(dev)
    ids = [d["id"] for d in deploy_history(dev)]
    dev.write(
        "notes.py", added.replace('{"n": v.number()}', '{"n": v.string()}').replace("40", "41")
    )
    dev.wait_until(lambda: reloads(dev) > count)
    assert [d["id"] for d in deploy_history(dev)] == ids
    dev.write("notes.py", notes_version(42))
    dev.wait_log(lambda text: "deploy: removed query notes:echo" in text)
