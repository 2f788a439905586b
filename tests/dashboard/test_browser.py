"""The dashboard in a real browser: Debian's chromium driven by playwright-core (npm).

With `CONVECT_SCREENSHOTS=1` (`make screenshots`) the run also takes the screenshots the
README shows (docs/dashboard/*.png); otherwise it writes nothing into the tree.
"""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

from tests.support.calls import mutation
from tests.support.npm import run_script
from tests.support.servers import ADMIN_KEY, ROOT, ServerProcess

ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}
SHOTS = ROOT / "docs" / "dashboard"


def screenshots() -> str:
    """The folder to write the README's screenshots to, or "" (unless asked, none)."""
    return str(SHOTS) if os.environ.get("CONVECT_SCREENSHOTS") == "1" else ""


def chromium() -> str:
    """The browser's executable (`.ci/run` installs Debian's chromium when missing)."""
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) if name else None
        if found:
            return found
    raise AssertionError("No chromium found: apt-get install chromium (or set CHROMIUM)")


def drive(server: ServerProcess, *steps: str, key: str = ADMIN_KEY) -> dict:  # type: ignore[type-arg]
    """Run the browser script's `steps` against `server`; what it saw."""
    out: dict = run_script(  # type: ignore[type-arg]
        "dashboard_browser.mjs",
        env={
            "CONVECT_URL": server.url,
            "ADMIN_KEY": key,
            "CHROMIUM": chromium(),
            "SHOTS": screenshots(),
            "STEPS": ",".join(steps),
        },
        timeout=120,
    )
    assert out["external"] == [], "the dashboard fetched from elsewhere"
    assert out["pageErrors"] == []
    return out


def test_screenshots_are_taken_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVECT_SCREENSHOTS", raising=False)
    assert screenshots() == ""
    monkeypatch.setenv("CONVECT_SCREENSHOTS", "0")
    assert screenshots() == ""
    monkeypatch.setenv("CONVECT_SCREENSHOTS", "1")
    assert screenshots() == str(SHOTS)


async def _seed(dash: httpx.AsyncClient) -> None:
    sys = "_system/dashboard:insert"
    author = await mutation(
        dash, sys, {"table": "authors", "document": {"name": "Ursula K. Le Guin"}}, headers=ADMIN
    )
    for title, year in (("The Dispossessed", 1974.0), ("A Wizard of Earthsea", 1968.0)):
        book = {"title": title, "year": year, "author": author}
        if year == 1968.0:  # ids nested in an array and an object link too
            book |= {"coauthors": [author], "credits": {"editor": author, "note": "first"}}
        await mutation(dash, sys, {"table": "books", "document": book}, headers=ADMIN)
    await mutation(dash, "library:schedule_reminder", {"note": "return the books"})


async def test_a_wrong_or_missing_key_gets_nothing(
    dash: httpx.AsyncClient, dashboard_server: ServerProcess
) -> None:
    await _seed(dash)
    out = drive(dashboard_server, "refused")
    assert out["refusedShell"] is False
    assert "Invalid admin key" in out["refusedMessage"]
    assert out["refusedAnswers"] and all('"success"' not in a for a in out["refusedAnswers"])
    assert all("Le Guin" not in a for a in out["refusedAnswers"])


async def test_the_dashboard_browses_edits_runs_cancels_and_uploads(
    dash: httpx.AsyncClient, dashboard_server: ServerProcess
) -> None:
    await _seed(dash)
    out = drive(dashboard_server, "data", "functions", "scheduled", "files", "schema", "health")
    assert "books=2" in out["tables"] and "authors=1" in out["tables"]
    # each row its _id and author; the Earthsea row its coauthor and editor too
    assert out["rows"] == 2 and out["idLinks"] == 6 and out["nestedIdLinks"] == 2
    assert out["sortedByYear"] == ["1968", "1974"] and "index by_year" in out["sortByYearNote"]
    assert out["sortedByTitle"] == ["A Wizard of Earthsea", "The Dispossessed"]
    assert "whole table fits on this page" in out["sortByTitleNote"]
    assert "full scan" in out["bigTableSortNote"] and "only this page" in out["bigTableSortNote"]
    assert "title" in out["schemaError"]  # the schema's refusal, shown in the editor
    assert out["secondPageSawEditMs"] < 5000
    assert "Ursula K. Le Guin" in out["linkedDocument"]
    assert len(out["bookDocumentLinks"]) == 3  # author, coauthors[0], credits.editor
    assert len(set(out["bookDocumentLinks"])) == 1
    assert out["runResult"].strip().strip('"')  # the new document's id
    assert "added book Run from the form" in out["runLogs"]
    assert "Arrived live" in out["liveQuery"]  # the subscribed query saw a later write
    assert out["cancelled"] == "canceled"
    assert "0 0 1 1 *" in out["cron"] and "library:tidy" in out["cron"] and "never" in out["cron"]
    assert out["previewWidth"] == 320 and out["fileType"] == "image/png"
    assert "by_year" in out["schemaText"] and "ready" in out["schemaText"]
    assert "readiness" in out["health"] and "ready" in out["health"]


async def test_the_logs_view_streams_calls_and_env_vars_are_set(
    dash: httpx.AsyncClient, dashboard_server: ServerProcess
) -> None:
    # the two endpoints the views read (the log stream, the environment-variable store)
    logs = await dash.get("/api/stream_function_logs?cursor=0", headers=ADMIN)
    env = await dash.post("/api/update_environment_variables", json={"changes": []}, headers=ADMIN)
    assert (logs.status_code, env.status_code) == (200, 200), (logs.text, env.text)
    out = drive(dashboard_server, "logs", "env")
    assert "added book Streamed" in out["logRow"] and "success" in out["logRow"]
    # 300 more calls: the newest 200 rows stay in the page, which says so
    assert out["logRowsAfterBurst"] == 200
    assert int(out["logStatus"].split()[0]) >= out["logReceivedBeforeBurst"] + 300
    assert "at most 200 rows" in out["logStatus"]
    assert out["logRowsFiltered"] == ["library:add_book"]
    assert "hello" not in out["envHidden"]
    assert out["envShown"] == "hello from the dashboard"
