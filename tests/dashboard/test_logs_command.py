"""`convect logs [--follow]`: the log stream the dashboard and `npx convex logs` read."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from tests.support.calls import mutation
from tests.support.servers import ADMIN_KEY, ROOT, ServerProcess, run_cli

ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}


async def test_logs_prints_recent_calls_with_their_log_lines(
    dash: httpx.AsyncClient, dashboard_server: ServerProcess
) -> None:
    await mutation(dash, "library:add_book", {"title": "Logged", "year": 1.0}, headers=ADMIN)
    done = run_cli(dashboard_server.env, "logs", "--url", dashboard_server.url, "--history", "50")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "library:add_book" in x)
    assert " M library:add_book " in line and " ok [" in line
    assert "  [LOG] 'added book Logged'" in done.stdout


async def test_logs_follow_prints_calls_as_they_finish(
    dash: httpx.AsyncClient, dashboard_server: ServerProcess
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "logs", "--follow", "--history", "1", "--url",
         dashboard_server.url],
        env=dashboard_server.env, cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # started or not yet: --history 1 prints the call either way
        await mutation(dash, "library:add_book", {"title": "Followed", "year": 1.0}, headers=ADMIN)
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        while "added book Followed" not in lines[-1]:
            lines.append(proc.stdout.readline())
        assert " M library:add_book " in lines[-2]
    finally:
        proc.terminate()
        proc.wait(10)


def test_logs_with_a_wrong_admin_key_says_so(dashboard_server: ServerProcess) -> None:
    env = {**dashboard_server.env, "CONVECT_ADMIN_KEY": "wrong-key-" + "x" * 30}
    done = run_cli(env, "logs", "--url", dashboard_server.url)
    assert done.returncode == 1
    assert "refused the admin key" in done.stderr and "x" * 30 not in done.stderr
