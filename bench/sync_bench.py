"""Live-query benchmark: many subscribers, update latency, fan-out, re-runs, server RSS.

Run alone with `python -m bench.sync_bench` (bench.run calls `run_sync_bench`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from bench.servers import run_alone, start_deployed_convect
from tests.support.servers import ADMIN_KEY

ROOT = Path(__file__).resolve().parent.parent


def _stats(url: str) -> dict:
    return httpx.get(
        f"{url}/api/debug/sync_stats", headers={"Authorization": f"Convex {ADMIN_KEY}"}
    ).json()


def _load(url: str, which: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.sync_load", url, which],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_sync_bench(database_base_url: str, redis_url: str, data_dir: Path) -> list[str]:
    """Run scenarios a and b against a fresh `convect serve`; return report lines."""
    server = start_deployed_convect(database_base_url, redis_url, data_dir, "bench_sync")
    lines = ["", "## Live queries", ""]
    try:
        proc = psutil.Process(server.proc.pid)
        rss0 = proc.memory_info().rss
        before = _stats(server.url)
        a = _load(server.url, "a")
        after = _stats(server.url)
        rss_a = proc.memory_info().rss
        commits = max(1, after["commits_seen"] - before["commits_seen"])
        reruns = after["reruns"] - before["reruns"] - a["sockets"]  # minus the initial runs
        affected = after["affected"] - before["affected"]
        lines += [
            f"(a) {a['sockets']} sockets, one author each; {a['writes']} writes at ~50/s as random authors",
            f"    update latency (mutation sent → subscriber has it): p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms"
            f"   [targets ≤ 20 / ≤ 100 ms]",
            f"    after the mutation's reply: p50 {a['after_ack_p50_ms']:.1f} ms, p99 {a['after_ack_p99_ms']:.1f} ms; missing {a['missing']}",
            f"    re-executions per commit: {reruns / commits:.2f} (affected per commit {affected / commits:.2f})",
            f"    server RSS: {rss0 / 2**20:.0f} MiB before, {rss_a / 2**20:.0f} MiB with the sockets [target ≤ 1024 MiB]",
        ]
        time.sleep(1)
        b = _load(server.url, "b")
        lines += [
            f"(b) {b['sockets']} sockets on one query, one write: last subscriber after {b['last_ms']:.0f} ms "
            f"(first {b['first_ms']:.0f} ms; {b['received']} received) [target ≤ 250 ms]",
        ]
    finally:
        server.stop()
    return lines


def main() -> None:
    """Stand-alone run with embedded services."""
    run_alone("sync", run_sync_bench)


if __name__ == "__main__":
    main()
