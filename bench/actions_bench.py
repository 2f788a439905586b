"""Where actions run: CONVECT_RUN_ACTIONS=api vs worker.

For each setting: a fresh database with a tiny app, `convect serve` (prod) and one
`convect worker`. Measured through HTTP (`POST /api/action`, `/api/query`):

- the latency of a trivial action (sequential calls on one keep-alive connection), so
  the difference between the two settings is what the hand-off to a worker adds;
- the API's query latency (p50, p99, max) while a CPU-bound action spins for
  BENCH_ACTIONS_SPIN seconds.

Run alone with `python -m bench.actions_bench` (embedded services). Knobs:
BENCH_ACTIONS_CALLS (300), BENCH_ACTIONS_SPIN (4), BENCH_ACTIONS_POLL (the worker's
CONVECT_WORKER_POLL_DELAY, 0.01).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from pathlib import Path

import httpx

from bench.servers import run_alone
from tests.support.apps import write_app
from tests.support.servers import (
    convect_env,
    create_database,
    run_cli,
    start_server,
    start_worker,
    stop_processes,
)

APP = {
    "bench_actions.py": """
        import time
        from app.server import action, query
        from app.values import v

        @action(args={})
        async def noop(ctx, args):
            return 1

        @action(args={"seconds": v.number()})
        async def spin(ctx, args):
            end = time.monotonic() + args["seconds"]
            while time.monotonic() < end:
                pass
            return "spun"

        @query(args={})
        async def ping(ctx, args):
            return "pong"
    """,
}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _post(client: httpx.Client, kind: str, path: str, args: dict[str, object]) -> float:
    started = time.perf_counter()
    r = client.post(f"/api/{kind}", json={"path": path, "args": args, "format": "json"})
    elapsed = (time.perf_counter() - started) * 1000
    body = r.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{path} failed: {body}")
    return elapsed


def _case(url: str, calls: int, spin: float) -> list[str]:
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(50):
            _post(client, "action", "bench_actions:noop", {})
        lat = [_post(client, "action", "bench_actions:noop", {}) for _ in range(calls)]
    spinning = threading.Thread(
        target=lambda: httpx.post(
            f"{url}/api/action",
            json={"path": "bench_actions:spin", "args": {"seconds": spin}},
            timeout=120,
        )
    )
    spinning.start()
    time.sleep(0.3)
    queries: list[float] = []
    with httpx.Client(base_url=url, timeout=120) as client:
        end = time.monotonic() + spin - 0.5
        while time.monotonic() < end:
            queries.append(_post(client, "query", "bench_actions:ping", {}))
    spinning.join()
    return [
        f"{statistics.median(lat):.2f} | {_pct(lat, 0.99):.2f}",
        f"{len(queries)} | {statistics.median(queries):.1f} | {_pct(queries, 0.99):.1f} | "
        f"{max(queries):.0f}",
    ]


def bench(database_url: str, redis_url: str, data_dir: Path) -> list[str]:
    """Both settings, one after the other; the report as Markdown lines."""
    calls = int(os.environ.get("BENCH_ACTIONS_CALLS", "300"))
    spin = float(os.environ.get("BENCH_ACTIONS_SPIN", "4"))
    poll = os.environ.get("BENCH_ACTIONS_POLL", "0.01")  # the worker's poll delay (s)
    folder = write_app(data_dir / "app", APP)
    rows = []
    for where in ("api", "worker"):
        url = asyncio.run(create_database(database_url, f"actions_{where}"))
        env = convect_env(
            url,
            redis_url,
            folder,
            data_dir / where,
            CONVECT_MODE="prod",
            CONVECT_LOG_LEVEL="warning",
            CONVECT_RUN_ACTIONS=where,
        )
        deployed = run_cli(env, "deploy")
        if deployed.returncode != 0:
            raise RuntimeError(deployed.stderr)
        worker_env = {**env, "CONVECT_LOG_LEVEL": "info", "CONVECT_WORKER_POLL_DELAY": poll}
        worker = start_worker(worker_env, data_dir / f"{where}-worker.log")
        server = start_server(env, data_dir / f"{where}-api.log")
        try:
            action, queries = _case(server.url, calls, spin)
        finally:
            server.stop()
            stop_processes([worker])
        rows.append(f"| {where} | {action} | {queries} |")
    return [
        f"Trivial action: {calls} sequential calls; queries while a {spin:g} s CPU-bound "
        f"action runs (ms). Worker poll delay {poll} s.",
        "",
        "| CONVECT_RUN_ACTIONS | action p50 | action p99 | queries answered | query p50 | "
        "query p99 | query max |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]


if __name__ == "__main__":
    run_alone("actions", bench)
