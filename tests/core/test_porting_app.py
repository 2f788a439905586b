"""A Convex app ported without reshaping (tests/apps/porting), driven by the official npm
clients: two-argument db forms, derived validators, union and `v.any()` tables, staged
indexes built in the background and enabled by a later deploy, environment variables,
live counts and `maximumBytesRead` pages."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.npm import run_script
from tests.support.servers import ADMIN_KEY, ROOT, deploy_app, run_cli, start_server
from tests.support.tokens import RsaIssuer

APP = ROOT / "tests" / "apps" / "porting"
STAGED_MESSAGE = "is currently staged and not available to query until it is enabled."


IDP = RsaIssuer("https://auth.porting.test", "porting")


def _index_states(url: str) -> dict[str, tuple[bool, str]]:
    """(staged, state) of every index of `tasks`, as the dashboard's Schema view shows it."""
    r = httpx.post(
        f"{url}/api/action",
        json={"path": "_system/dashboard:schema", "args": {}, "format": "json"},
        headers={"Authorization": f"Convex {ADMIN_KEY}"},
        timeout=30,
    )
    tables = {t["table"]: t for t in r.json()["value"]["tables"]}
    tasks = tables["tasks"]
    return {i["name"]: (i["staged"], i["state"]) for i in tasks["indexes"] + tasks["searchIndexes"]}


def _run(env: dict[str, str], log: Path, phase: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Serve the app, run the npm script's `phase`; then wait until the server's background
    builder has built every staged index. Returns the script's observations and the
    index states seen at start and at the end."""
    server = start_server(env, log)
    try:
        states = {"start": _index_states(server.url)}
        token = IDP.token("ana", email="ana@example.com", role="owner")
        script_env = {"CONVECT_URL": server.url, "PORTING_TOKEN": token, "ADMIN_KEY": ADMIN_KEY}
        out: dict[str, Any] = run_script("porting.mjs", phase, env=script_env)
        end = time.monotonic() + 60
        while any(s == (True, "backfilling") for s in _index_states(server.url).values()):
            assert time.monotonic() < end, "the staged indexes were never built"
            time.sleep(0.1)
        states["end"] = _index_states(server.url)
        return out, states
    finally:
        server.stop()


def test_a_ported_app_runs_unchanged_under_the_npm_clients(
    services: dict[str, str], data_dir: Path
) -> None:
    app = data_dir / "porting_app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    provider = {"type": "customJwt", "issuer": IDP.issuer, "jwks": IDP.jwks}
    provider |= {"algorithm": "RS256", "application_id": IDP.audience}
    env = deploy_app(
        services,
        "porting",
        app,
        data_dir / "porting",
        CONVECT_AUTH_PROVIDERS=json.dumps([provider]),
        CONVECT_INDEX_BUILD_POLL="0.2",
        PORTING_GREETING="hello",  # a start-up value; a stored variable wins over it
    )
    # The deploy returned without building the staged index: it waits for a server.
    listed = run_cli(env, "indexes")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "tasks.by_assignee (database): staged, backfilling",
        "tasks.search_title (search): staged, backfilled",  # new table: built with it
    ]
    log = data_dir / "porting.log"
    out, states = _run(env, log, "staged")
    # The server's background builder built it; it stays staged.
    assert states["end"] == {
        "by_project_done": (False, "ready"),
        "by_assignee": (True, "backfilled"),
        "search_title": (True, "backfilled"),
    }
    listed = run_cli(env, "indexes")
    assert "tasks.by_assignee (database): staged, backfilled" in listed.stdout

    # A live count follows writes entering and leaving its range, and nothing else.
    assert out["countsSettled"] == [0, 1, 2, 1, 0]
    assert (out["countDone"], out["countAll"], out["countUnassigned"]) == (1, 2, 1)

    # get/patch/replace/delete with the table first; derived validators.
    assert out["get"]["title"] == "c" and out["get"]["assignee"] is None
    assert out["summary"] == {
        "_id": out["get"]["_id"],
        "title": "c2",
        "done": False,
        "assignee": "bo",
    }
    assert out["replaced"]["title"] == "c3" and "notes" not in out["replaced"]
    assert "missing the required field `assignee`" in out["errors"]["missingNullable"]
    assert "extra field `project`" in out["errors"]["partialUnknown"]
    for op in ("get", "patch", "replace", "delete"):
        msg = out["errors"][f"wrongTable_{op}"]
        assert f"Invalid argument `id` for `db.{op}`" in msg, msg
        assert "belongs to table 'events', not to table 'tasks'" in msg

    # Union-typed table and its index on shared fields; v.any() table.
    assert out["events"] == ["comment", "status"] and out["comments"] == 1
    assert "does not match the schema" in out["errors"]["badVariant"]
    assert out["payloads"] == 2

    # maximumBytesRead = 1: one document a page, the limit marks each page, and the
    # page after the last document is an empty, done one (as in Convex).
    assert out["bytePages"] == [{"n": 1, "isDone": False, "pageStatus": "SplitRequired"}] * 5 + [
        {"n": 0, "isDone": True, "pageStatus": None}
    ]
    assert out["wholePage"] == {"n": 5, "isDone": True, "pageStatus": None}
    assert out["whoami"] is None
    assert out["whoamiAuthed"]["subject"] == "ana"
    assert out["whoamiAuthed"]["tokenIdentifier"] == f"{IDP.issuer}|ana"
    assert out["whoamiAuthed"]["email"] == "ana@example.com"
    assert out["whoamiAuthed"]["role"] == "owner"
    # Under `returns=v.nullable(v.object(...))` the identity is checked as that object.
    assert out["whoamiChecked"] == out["whoamiAuthed"]
    assert out["whoamiCheckedAnon"] is None

    # Environment variables: start-up value, stored (live), removed, stored again.
    assert out["greetingStartup"] == "hello"
    assert (out["greetingStored"], out["greetingAction"]) == ("hola", "hola")
    assert out["greetingRemoved"] == "hello"
    assert out["greetings"] == ["hello", "hola", "hello", "bonjour"]

    # Staged indexes are built but refuse queries...
    assert f"Index tasks.by_assignee {STAGED_MESSAGE}" in out["byAssignee"]
    assert f"Index tasks.search_title {STAGED_MESSAGE}" in out["search"]

    # ...until a deploy without the staged flag enables them.
    schema = app / "schema.py"
    schema.write_text(schema.read_text().replace("STAGED = True", "STAGED = False"))
    deployed = run_cli(env, "deploy")
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    said = deployed.stdout + deployed.stderr
    assert "enabled index tasks.by_assignee" in said  # built in the background: no rebuild
    assert "enabled index tasks.search_title" in said
    assert "creat" not in said and "building" not in said
    assert run_cli(env, "indexes").stdout.strip() == "no staged indexes"
    enabled, states = _run(env, log, "enabled")
    assert states["start"]["by_assignee"] == (False, "ready")
    assert enabled["greetingAfterRestart"] == "bonjour"
    assert enabled["byAssignee"] is None and enabled["search"] is None
    assert enabled["byAssigneeRows"] == ["c3"]
    assert enabled["searchRows"] == ["c3"]
