"""Commit notifications go out only when another process listens for them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.sync.notifier import CHANNEL, HELLO, LISTEN_APP, SAFETY_REFRESH_S
from tests.conftest import DEMO
from tests.support.calls import mutation
from tests.support.servers import ServerProcess, deploy_app, start_server


@pytest.fixture(scope="module")
def alone(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """One `convect serve` process, alone on its database."""
    env = deploy_app(services, "notify_alone", DEMO, data_dir / "notify_alone")
    server = start_server(env, data_dir / "notify-alone.log")
    try:
        yield server
    finally:
        server.stop()


async def _watch(url: str, name: str, heard: list[str]) -> asyncpg.Connection:
    """A session listening on the commit channel, as application `name`."""
    conn = await asyncpg.connect(url, server_settings={"application_name": name})
    await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: heard.append(payload))
    return conn


async def test_a_process_alone_sends_no_notify_and_starts_as_soon_as_another_listens(
    alone: ServerProcess,
) -> None:
    url = alone.env["DATABASE_URL"]
    heard: list[str] = []
    probe = await _watch(url, "test-probe", heard)  # not a Convect listener: not counted
    newcomer: asyncpg.Connection | None = None
    try:
        # Past the listener's health checks, which count the other listening processes.
        await asyncio.sleep(2.5 * SAFETY_REFRESH_S)
        async with httpx.AsyncClient(base_url=alone.url, timeout=30) as client:
            heard.clear()
            for i in range(5):
                await mutation(client, "messages:create", {"author": "n", "body": str(i)})
            await asyncio.sleep(0.3)
            assert heard == []  # nobody else listens: no NOTIFY statements at all

            # Another process's listener starts: its hello makes this one notify at once,
            # well before its next health check.
            newcomer = await _watch(url, LISTEN_APP, [])
            await newcomer.execute(f"NOTIFY {CHANNEL}, '{HELLO}'")
            await asyncio.sleep(0.05)
            heard.clear()
            started = asyncio.get_running_loop().time()
            await mutation(client, "messages:create", {"author": "n", "body": "seen"})
            while not heard:
                assert asyncio.get_running_loop().time() - started < 0.5 * SAFETY_REFRESH_S
                await asyncio.sleep(0.01)
            assert all(payload != HELLO for payload in heard)

            # It leaves: within a health check or two, the notifications stop again.
            await newcomer.close()
            newcomer = None
            await asyncio.sleep(2.5 * SAFETY_REFRESH_S)
            heard.clear()
            await mutation(client, "messages:create", {"author": "n", "body": "alone"})
            await asyncio.sleep(0.3)
            assert heard == []
    finally:
        if newcomer is not None:
            await newcomer.close()
        await probe.close()
