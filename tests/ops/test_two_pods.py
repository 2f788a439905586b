"""Two API pods and two workers on one PostgreSQL and Redis; one API pod drains mid-load.

Like a rolling update on Kubernetes: a balancer (tests/ops/balancer.py) routes new
connections to the pods whose /readyz says 200. Clients: the PyPI ConvexHttpClient
(four threads), the npm ConvexClient, and one scripted socket client started on each
pod, which resumes through the balancer. Every mutation carries a unique token; after
pod A gets SIGTERM (and a worker too), every acknowledged token must be in the database
exactly once, and so must each scheduled follow-up a worker ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.ops.conftest import OPSAPP
from tests.ops.resuming import ResumingClient
from tests.support.npm import node
from tests.support.servers import (
    ServerProcess,
    deploy_app,
    free_port,
    start_server,
    start_worker,
    stop_processes,
)

HERE = Path(__file__).resolve().parent
LOAD_S = 4.5  # how long every client keeps writing
SIGTERM_AFTER_S = 1.5  # into the load
DRAIN_DELAY_S = 1.5  # pod A: SIGTERM -> listeners closed (the preStop sleep on Kubernetes)
SLOW_MS = 3000  # calls started on pod A just before its SIGTERM, still running after it


def _start_balancer(port: int, backends: list[int], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "balancer.py"), str(port), *map(str, backends)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if "listening" in text and all(f"up {p}" in text for p in backends):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"balancer did not start:\n{log_path.read_text()}")


def _http_load(
    url: str, name: str, stop: threading.Event, done: list[str], errors: list[str]
) -> None:
    """The PyPI ConvexHttpClient, one mutation after another (a new connection each)."""
    from convex.http_client import ConvexHttpClient

    client = ConvexHttpClient(url)
    i = 0
    while not stop.is_set():
        token = f"{name}-{i}"
        try:
            client.mutation("ledger:record", {"token": token, "client": name, "confirm": True})
            done.append(token)
        except Exception as exc:
            errors.append(f"{token}: {type(exc).__name__}: {exc}")
        i += 1


def _events(log_path: Path) -> list[tuple[float, str, list[str]]]:
    out = []
    for line in log_path.read_text().splitlines():
        stamp, kind, *rest = line.split()
        out.append((float(stamp), kind, rest))
    return out


async def _rows(url: str, table: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(f"SELECT doc->>'token' AS token FROM docs.\"{table}\"")
    finally:
        await conn.close()
    return [r["token"] for r in rows]


@pytest.fixture
def pods(services: dict[str, str], data_dir: Path):  # type: ignore[no-untyped-def]
    """Database `ops_pods` deployed; API pods A (drain delay) and B; two workers; a balancer."""
    folder = data_dir / "ops_pods"
    folder.mkdir(exist_ok=True)
    env = deploy_app(services, "ops_pods", OPSAPP, folder / "deploy", CONVECT_MODE="prod")
    env_a = {
        **env,
        "CONVECT_DATA_DIR": str(folder / "a"),
        "CONVECT_DRAIN_DELAY": str(DRAIN_DELAY_S),
    }
    with ThreadPoolExecutor(4) as pool:  # the four processes start at once
        starting = [
            pool.submit(start_server, env_a, folder / "a.log"),
            pool.submit(
                start_server, {**env, "CONVECT_DATA_DIR": str(folder / "b")}, folder / "b.log"
            ),
            *(
                pool.submit(
                    start_worker, {**env, "CONVECT_DATA_DIR": str(folder / w)}, folder / f"{w}.log"
                )
                for w in ("w1", "w2")
            ),
        ]
    outcomes = [f.exception() or f.result() for f in starting]
    servers = [o for o in outcomes if isinstance(o, ServerProcess)]
    procs = [o for o in outcomes if isinstance(o, subprocess.Popen)]
    try:
        for o in outcomes:
            if isinstance(o, BaseException):
                raise o
        a, b = servers
        lb_port = free_port()
        procs.append(_start_balancer(lb_port, [a.port, b.port], folder / "lb.log"))
        yield {"env": env, "a": a, "b": b, "w1": procs[0], "w2": procs[1],
               "lb": f"http://127.0.0.1:{lb_port}", "folder": folder}  # fmt: skip
    finally:
        stop_processes(procs + [s.proc for s in servers], 20)


async def test_sigterm_on_one_api_pod_mid_load_loses_and_repeats_no_mutation(pods) -> None:  # type: ignore[no-untyped-def]
    a: ServerProcess = pods["a"]
    b: ServerProcess = pods["b"]
    lb: str = pods["lb"]
    folder: Path = pods["folder"]

    # The npm client is the balancer's first connection, so it starts on pod A.
    npm = await asyncio.create_subprocess_exec(
        node(), str(HERE / "ledger_client.mjs"),
        env={**os.environ, "CONVECT_URL": lb, "DURATION_MS": str(int(LOAD_S * 1000))},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert npm.stdout is not None
    first = await asyncio.wait_for(npm.stdout.readline(), 20)
    assert first.strip() == b"ready", first
    lb_events = _events(folder / "lb.log")
    assert [e[2][1] for e in lb_events if e[1] == "route"][:1] == [str(a.port)]

    # A scripted socket client on each pod, resuming through the balancer.
    sockets = [ResumingClient(f"sock-{n}", pod.url, lb) for n, pod in (("a", a), ("b", b))]
    socket_runs = [asyncio.create_task(c.run(LOAD_S)) for c in sockets]
    stop = threading.Event()
    http_done: list[list[str]] = [[] for _ in range(4)]
    http_errors: list[str] = []
    threads = [
        threading.Thread(target=_http_load, args=(lb, f"http{i}", stop, http_done[i], http_errors))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    started = time.monotonic()

    await asyncio.sleep(SIGTERM_AFTER_S - 0.3)
    # Calls in flight on pod A when it gets SIGTERM: they must complete.
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as direct:
        slow = [
            asyncio.create_task(
                direct.post(
                    "/api/action",
                    json={
                        "path": "ledger:slow_record",
                        "args": {"token": f"slow-{i}", "ms": SLOW_MS},
                    },
                )
            )
            for i in range(3)
        ]
        await asyncio.sleep(0.3)
        sigterm_at = time.time()
        a.proc.send_signal(signal.SIGTERM)
        pods["w1"].send_signal(signal.SIGTERM)  # a worker leaves in the same rollout

        # Past the drain delay pod A accepts nothing new, while its in-flight calls run on.
        await asyncio.sleep(DRAIN_DELAY_S + 0.3)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{a.url}/healthz", timeout=2)
        assert not all(t.done() for t in slow)
        slow_replies = await asyncio.gather(*slow)
    for r in slow_replies:
        assert r.status_code == 200 and r.json()["status"] == "success", r.text

    a_exit = await asyncio.to_thread(a.proc.wait, 30)
    a_exit_s = time.time() - sigterm_at
    assert a_exit == 0, a.log()[-3000:]
    # Its drain ended soon after its last call, well inside the grace period.
    complete = [
        r["ts"] for r in map(json.loads, a.log().splitlines()) if r["msg"] == "shutdown complete"
    ]
    assert complete and complete[0] - sigterm_at < SLOW_MS / 1000 + 2, (complete, sigterm_at)
    assert a_exit_s < 20, a_exit_s
    assert await asyncio.to_thread(pods["w1"].wait, 60) == 0

    ledgers = await asyncio.gather(*socket_runs)
    await asyncio.to_thread(time.sleep, max(0.0, LOAD_S - (time.monotonic() - started)))
    stop.set()
    for t in threads:
        await asyncio.to_thread(t.join, 30)
    npm_out, npm_err = await asyncio.wait_for(npm.communicate(), 30)
    assert npm.returncode == 0, npm_err.decode()[-3000:]
    npm_result = json.loads(npm_out.decode().strip().splitlines()[-1])

    # No client saw an error; each socket client's subscription ended at its own count.
    assert http_errors == []
    assert npm_result["errors"] == []
    assert npm_result["last"] == len(npm_result["done"])
    for c, ledger in zip(sockets, ledgers, strict=True):
        assert ledger.errors == [], c.name
        assert ledger.last_count == len(ledger.done), (c.name, ledger)
    # The socket client that started on pod A was closed with 1012 and resumed via the balancer.
    a_ledger = ledgers[0]
    assert 1012 in a_ledger.closes, a_ledger
    assert a_ledger.urls[0] == a.url and a_ledger.urls[-1] == lb
    assert ledgers[1].closes == []  # pod B's client never noticed anything

    # The balancer took pod A out within its drain delay; no connection reached A after.
    events = _events(folder / "lb.log")
    down = [t for t, kind, rest in events if kind == "down" and rest == [str(a.port)]]
    assert down and sigterm_at <= down[0] < sigterm_at + DRAIN_DELAY_S, (down, sigterm_at)
    # A connection the balancer had already picked A for as it marked A down may still be
    # logged just after (the balancer's own race, not the server's); A still accepts then
    # (its drain delay), and every call's outcome is checked below. Later ones are not allowed.
    late = [
        e for e in events if e[1] == "route" and e[2][1] == str(a.port) and e[0] > down[0] + 0.1
    ]
    assert late == []
    assert any(e[1] == "route" and e[2][1] == str(b.port) and e[0] > down[0] for e in events)

    # Every acknowledged token is in the database exactly once, and nothing else is.
    acked = [t for done in http_done for t in done] + npm_result["done"]
    acked += [t for ledger in ledgers for t in ledger.done] + [f"slow-{i}" for i in range(3)]
    assert len(acked) == len(set(acked))
    url = pods["env"]["DATABASE_URL"]
    entries = Counter(await _rows(url, "ops_entries"))
    assert {t: n for t, n in entries.items() if n != 1} == {}
    assert set(entries) == set(acked)
    # Writes went through both pods and kept going after A left.
    assert len(acked) > 100, len(acked)

    # Each scheduled follow-up ran exactly once, although a worker left mid-load.
    wanted = set(npm_result["done"]) | {t for done in http_done for t in done}
    deadline = time.monotonic() + 30
    while True:
        confirms = Counter(await _rows(url, "ops_confirms"))
        if set(confirms) >= wanted or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert set(confirms) == wanted, len(wanted - set(confirms))
    assert {t: n for t, n in confirms.items() if n != 1} == {}

    print(
        f"acked={len(acked)} http={sum(map(len, http_done))} npm={len(npm_result['done'])} "
        f"sockets={[len(x.done) for x in ledgers]} resent={[x.resent for x in ledgers]} "
        f"a_exit_s={a_exit_s:.2f} drained_s={complete[0] - sigterm_at:.2f} down_after_s={down[0] - sigterm_at:.2f} "
        f"confirms={len(confirms)}"
    )  # measurements, shown with -s
    # Pod B serves on, ready.
    assert httpx.get(f"{b.url}/readyz", timeout=5).status_code == 200
