"""Graceful shutdown of `convect serve` on SIGTERM (app/serve.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.ops.conftest import ADMIN
from tests.support.calls import query
from tests.support.servers import ServerProcess, start_server
from tests.support.ws import SyncClient


def _serve(ops_server: ServerProcess, data_dir: Path, name: str, **extra: str) -> ServerProcess:
    """Another `convect serve` of the ops app, on the ops database (a second pod)."""
    env = {**ops_server.env, "CONVECT_DATA_DIR": str(data_dir / name), **extra}
    return start_server(env, data_dir / f"{name}.log")


def _slow(client: httpx.AsyncClient, token: str, ms: int) -> asyncio.Task[httpx.Response]:
    body = {"path": "ledger:slow_record", "args": {"token": token, "ms": ms}}
    return asyncio.create_task(client.post("/api/action", json=body))


def _completed_at(pod: ServerProcess) -> float:
    """When the server logged the end of its drain (JSON logs: the pod runs in prod mode)."""
    records = [json.loads(line) for line in pod.log().splitlines() if line.strip()]
    return float(next(r["ts"] for r in records if r["msg"] == "shutdown complete"))


async def _close_code(c: SyncClient, timeout: float) -> int:
    try:
        while True:
            await c.recv(timeout)
    except ConnectionClosed as exc:
        assert exc.rcvd is not None
        return int(exc.rcvd.code)


async def test_sigterm_stops_accepting_finishes_in_flight_calls_closes_sockets_and_exits_zero(
    ops: httpx.AsyncClient, ops_server: ServerProcess, data_dir: Path
) -> None:
    pod = _serve(ops_server, data_dir, "ops_drain_now")
    try:
        socket = await SyncClient.open(pod.url)
        await socket.add("ledger:count_for", {"client": "slow"})
        await socket.wait_query_set()
        async with httpx.AsyncClient(base_url=pod.url, timeout=30) as client:
            in_flight = [_slow(client, f"now-{i}", 1500) for i in range(2)]
            await asyncio.sleep(0.3)
            sigterm_at, sigterm_wall = time.monotonic(), time.time()
            pod.proc.send_signal(signal.SIGTERM)
            # The socket is closed with 1012 (Service Restart) right away: clients reconnect.
            assert await _close_code(socket, 2) == 1012
            assert time.monotonic() - sigterm_at < 1
            # No new connection is accepted while the in-flight calls run on.
            with pytest.raises(httpx.ConnectError):
                async with httpx.AsyncClient(base_url=pod.url) as fresh:
                    await fresh.get("/healthz")
            assert not any(t.done() for t in in_flight)
            replies = await asyncio.gather(*in_flight)
        for r in replies:
            assert r.status_code == 200 and r.json() == {
                "status": "success", "value": r.json()["value"], "logLines": []
            }  # fmt: skip
        assert await asyncio.to_thread(pod.proc.wait, 20) == 0
        assert time.monotonic() - sigterm_at < 15  # the grace period left after preStop
        # The drain itself ended right after the in-flight calls.
        assert _completed_at(pod) - sigterm_wall < 1.5 + 1.5, pod.log()
        # The mutations those calls made committed, once each.
        assert await query(ops, "ledger:count_for", {"client": "slow"}) == 2
        assert "shutdown complete" in pod.log()
    finally:
        pod.stop()


async def test_during_the_drain_delay_readyz_is_503_and_responses_close_their_connection(
    ops: httpx.AsyncClient, ops_server: ServerProcess, data_dir: Path
) -> None:
    pod = _serve(ops_server, data_dir, "ops_drain_delay", CONVECT_DRAIN_DELAY="1.5")
    try:
        socket = await SyncClient.open(pod.url)
        await socket.add("ledger:count_for", {"client": "slow"})
        await socket.wait_query_set()
        async with httpx.AsyncClient(base_url=pod.url, timeout=30) as client:
            before = await client.get("/readyz")
            assert before.status_code == 200
            assert before.headers.get("connection") != "close"  # keep-alive so far
            in_flight = _slow(client, "delayed", 2500)
            await asyncio.sleep(0.2)
            sigterm_at = time.monotonic()
            pod.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            # Still accepting during the delay, but unready, and closing every connection.
            r = await client.get("/readyz")
            assert r.status_code == 503
            assert r.json()["checks"] == {"process": "draining for shutdown"}
            assert r.headers["connection"] == "close"
            served = await client.post(
                "/api/query", json={"path": "ledger:count_for", "args": {"client": "x"}}
            )
            assert served.status_code == 200 and served.json()["value"] == 0
            assert served.headers["connection"] == "close"
            metrics = await client.get("/metrics", headers=ADMIN)
            assert "convect_draining 1.0" in metrics.text
            # Sockets stay until the delay is over, then get 1012.
            assert await _close_code(socket, 3) == 1012
            assert 1.4 < time.monotonic() - sigterm_at < 4
            reply = await in_flight
        assert reply.status_code == 200 and reply.json()["value"] == "delayed"
        assert await asyncio.to_thread(pod.proc.wait, 20) == 0
    finally:
        pod.stop()


async def test_a_second_signal_stops_waiting_for_in_flight_calls(
    ops: httpx.AsyncClient, ops_server: ServerProcess, data_dir: Path
) -> None:
    pod = _serve(ops_server, data_dir, "ops_drain_forced")
    try:
        async with httpx.AsyncClient(base_url=pod.url, timeout=30) as client:
            stuck = _slow(client, "never", 60_000)
            await asyncio.sleep(0.3)
            pod.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert pod.proc.poll() is None  # waiting for the 60 s call
            pod.proc.send_signal(signal.SIGINT)
            assert await asyncio.to_thread(pod.proc.wait, 10) == 0
            # The abandoned call is cut off: a 500 or a dropped connection, never a success.
            try:
                assert (await stuck).status_code == 500
            except httpx.HTTPError:
                pass
        assert "second signal" in pod.log()
    finally:
        pod.stop()
