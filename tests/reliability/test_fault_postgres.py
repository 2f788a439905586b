"""PostgreSQL stopped and started under the bank load, Convect left running.

The test has its own embedded PostgreSQL (tests/reliability/faults.py), so the session's
shared server is never touched. While the database is down, calls get an error reply
quickly (no hang, no crash) and /healthz stays 200 while /readyz says 503; once it is
back, calls succeed again without restarting Convect, the live-query listener
reconnects, and every subscriber converges on the final balances. Nothing acknowledged
is lost and nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import DEMO
from tests.reliability.bank import Mix, Run, open_accounts
from tests.reliability.bank_clients import CONFLICT
from tests.reliability.faults import PrivatePostgres
from tests.support.servers import (
    ServerProcess,
    served_app,
)

LOAD_S = 9.0
DOWN_AFTER_S = 2.0
DOWN_FOR_S = 2.5
RECOVER_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def pg_and_server(
    services: dict[str, str], data_dir: Path
) -> Iterator[tuple[PrivatePostgres, ServerProcess]]:
    """A private PostgreSQL and a `convect serve` of the demo app on it."""
    pg = PrivatePostgres(data_dir / "rel-pg")
    try:
        own = {**services, "database_url": pg.url}
        with served_app(own, "rel_pg", DEMO, data_dir / "rel-pg-app") as server:
            yield pg, server
    finally:
        pg.close()


async def _listeners(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'convect-listen' AND datname = current_database()"
        )
    finally:
        await conn.close()
    return n


async def _while_down(client: httpx.AsyncClient, marks: dict[str, float]) -> None:
    """Probe the API while the database is down: prompt error replies, alive, not ready."""
    t0 = time.monotonic()
    r = await client.post(
        "/api/mutation", json={"path": "accounts:open", "args": {"owner": "x", "balance": 1}}
    )
    marks["probe_s"] = time.monotonic() - t0
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "error" and "Server Error" in body["errorMessage"], body
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 503


@pytest.mark.reliability
async def test_postgres_restarted_under_load_fails_calls_cleanly_and_recovers_without_a_restart(
    pg_and_server: tuple[PrivatePostgres, ServerProcess],
) -> None:
    pg, server = pg_and_server
    pid = server.proc.pid
    marks: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        accounts = await open_accounts(client)
        assert await _listeners(server.env["DATABASE_URL"]) == 1
        run = Run(server.url, accounts, Mix(http=12, sockets=8, pypi=2, observers=3))

        async def outage() -> None:
            await asyncio.sleep(DOWN_AFTER_S)
            marks["down"] = time.monotonic()
            await asyncio.to_thread(pg.stop)
            await _while_down(client, marks)
            await asyncio.sleep(DOWN_FOR_S)
            await asyncio.to_thread(pg.start)
            marks["up"] = time.monotonic()

        try:
            await run.go(LOAD_S, during=outage())
            final = await run.verify(client, failures=r"Server Error|ConflictError")
        finally:
            await run.close()
        print(run.summary())
        ledger = run.ledger
        # The outage was felt, only while it lasted, and every error came back promptly.
        assert ledger.failed, "no call failed while PostgreSQL was down"
        outside = [
            (round(t - marks["down"], 2), m)
            for m, t in zip(ledger.failed, ledger.failed_at, strict=True)
            if not marks["down"] <= t <= marks["up"] + RECOVER_WITHIN_S and CONFLICT not in m
        ]
        assert outside == [], outside[:5]  # (contention give-ups may come at any time)
        assert ledger.slowest_failure_s < 10, ledger.slowest_failure_s
        assert marks["probe_s"] < 5, marks
        # Calls succeed again soon after the restart, without restarting Convect.
        after = [t for t in ledger.successes_at if t > marks["up"]]
        assert after and after[0] - marks["up"] < RECOVER_WITHIN_S
        recovered_s = after[0] - marks["up"]
        assert server.proc.poll() is None and server.proc.pid == pid
        assert (await client.get("/readyz")).status_code == 200
        # The live-query listener has its connection back, and says so in the log.
        assert await _listeners(server.env["DATABASE_URL"]) == 1
        assert "live-query listener reconnected" in server.log()
        assert sum(final.values()) == 20 * 1000
        print(
            f"down {marks['up'] - marks['down']:.1f}s, {len(ledger.failed)} error replies "
            f"(slowest {ledger.slowest_failure_s:.2f}s), first success {recovered_s:.2f}s "
            f"after the restart; observer reconnects {[o.reconnects for o in run.observers]}"
        )
