"""A Convex app ported without reshaping (tests/apps/porting), driven by the official npm
clients: two-argument db forms, derived validators, union and `v.any()` tables, staged
indexes enabled by a later deploy, live counts and `maximumBytesRead` pages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.support.npm import run_script
from tests.support.servers import ROOT, deploy_app, run_cli, start_server
from tests.support.tokens import RsaIssuer

APP = ROOT / "tests" / "apps" / "porting"
STAGED_MESSAGE = "is currently staged and not available to query until it is enabled."


IDP = RsaIssuer("https://auth.porting.test", "porting")


def _run(env: dict[str, str], log: Path, phase: str) -> dict[str, Any]:
    server = start_server(env, log)
    try:
        token = IDP.token("ana", email="ana@example.com", role="owner")
        out: dict[str, Any] = run_script(
            "porting.mjs", phase, env={"CONVECT_URL": server.url, "PORTING_TOKEN": token}
        )
        return out
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
    )
    log = data_dir / "porting.log"
    out = _run(env, log, "staged")

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

    # Staged indexes are built but refuse queries...
    assert f"Index tasks.by_assignee {STAGED_MESSAGE}" in out["byAssignee"]
    assert f"Index tasks.search_title {STAGED_MESSAGE}" in out["search"]

    # ...until a deploy without the staged flag enables them.
    schema = app / "schema.py"
    schema.write_text(schema.read_text().replace("STAGED = True", "STAGED = False"))
    deployed = run_cli(env, "deploy")
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    assert "index" not in deployed.stdout + deployed.stderr  # enabled without a rebuild
    enabled = _run(env, log, "enabled")
    assert enabled["byAssignee"] is None and enabled["search"] is None
    assert enabled["byAssigneeRows"] == ["c3"]
    assert enabled["searchRows"] == ["c3"]
