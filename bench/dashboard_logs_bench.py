"""The dashboard's Logs view at a thousand calls a second.

A tiny app served by `convect serve` in prod mode; `bench.paced_load` (a subprocess)
calls its no-op action at BENCH_LOGS_RATE calls a second (1,000) while Debian's chromium,
driven by playwright-core (`bench/dashboard_logs.mjs`), has the Logs view open and
records every animation frame's time: first unfiltered, then with a text filter that
matches one call in ten. Reports the calls a second reached, the frames' median, p95
and max, frames over 50 ms, long tasks, and the rows the view keeps in the DOM.

Run alone with `python -m bench.dashboard_logs_bench` (embedded services; needs
`chromium` and `make setup`'s tests/js/node_modules). Knobs: BENCH_LOGS_RATE (1000),
BENCH_LOGS_SECONDS (10, per phase), BENCH_LOGS_WARMUP (3).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.servers import ROOT, run_alone
from tests.support.apps import write_app
from tests.support.servers import ADMIN_KEY, convect_env, create_database, run_cli, start_server

APP = {
    "bench_logs.py": """
        import itertools
        from app.server import action

        _n = itertools.count()

        # An action, not a query: a query's result is cached, and a cached answer is
        # not a call in the log stream.
        @action(args={})
        async def tick(ctx, args):
            n = next(_n)
            print("tick", n % 10)
            return n
    """,
}


def _chromium() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) if name else None
        if found:
            return found
    raise SystemExit("no chromium: apt-get install chromium (or set CHROMIUM)")


def bench(database_base_url: str, redis_url: str, data_dir: Path) -> list[str]:
    """Serve the app, load it, measure the Logs view; the report's lines."""
    import asyncio

    rate = float(os.environ.get("BENCH_LOGS_RATE", "1000"))
    seconds = float(os.environ.get("BENCH_LOGS_SECONDS", "10"))
    warmup = float(os.environ.get("BENCH_LOGS_WARMUP", "3"))
    folder = write_app(Path(tempfile.mkdtemp(prefix="convect-bench-logs-app-")), APP)
    url = asyncio.run(create_database(database_base_url, "bench_logs"))
    env = convect_env(url, redis_url, folder, data_dir / "logs", CONVECT_MODE="prod")
    env["CONVECT_LOG_LEVEL"] = "warning"
    deployed = run_cli(env, "deploy")
    if deployed.returncode != 0:
        raise RuntimeError(deployed.stderr)
    server = start_server(env, data_dir / "logs.log")
    try:
        load_seconds = warmup + 2 * seconds + 15  # covers start-up, both phases, the filter
        load = subprocess.Popen(
            [sys.executable, "-m", "bench.paced_load", server.url, "action", "bench_logs:tick", str(rate), str(load_seconds)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        browser = subprocess.run(
            ["node", str(ROOT / "bench" / "dashboard_logs.mjs")],
            env={
                **os.environ,
                "CONVECT_URL": server.url,
                "ADMIN_KEY": ADMIN_KEY,
                "CHROMIUM": _chromium(),
                "NODE_MODULES": str(ROOT / "tests" / "js" / "node_modules"),
                "WARMUP_MS": str(int(warmup * 1000)),
                "MEASURE_MS": str(int(seconds * 1000)),
                "FILTER": "tick 7",
            },
            capture_output=True, text=True, timeout=load_seconds + 120, check=False,
        )  # fmt: skip
        reached = load.communicate(timeout=load_seconds + 30)[0].strip()
        if browser.returncode != 0:
            raise RuntimeError(browser.stderr + browser.stdout)
        seen = json.loads(browser.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    lines = [
        f"# Logs view under load ({rate:g} calls/s asked, prod `convect serve`)",
        "",
        f"load: {reached or '(stopped before its report)'}",
        f"filter applied in {seen.get('filterAppliedMs', '-')} ms; page errors: {seen['pageErrors']}",
        "",
        "| phase | frames | fps | median ms | p95 ms | max ms | frames > 50 ms | long tasks (ms) | rows in DOM | status |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in seen["phases"]:
        lines.append(
            f"| {p['name']} | {p['frames']} | {p['fps']} | {p['medianMs']} | {p['p95Ms']} | "
            f"{p['maxMs']} | {p['over50ms']} | {p['longTasks']} ({p['longTaskMs']}) | "
            f"{p['rowsShown']} | {p['status']} |"
        )
    return lines


if __name__ == "__main__":
    run_alone("logs", bench)
