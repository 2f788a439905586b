"""The storage sweep runs every CONVECT_STORAGE_SWEEP_INTERVAL in one process of the
deployment at a time, removes leftovers that appear while it runs, and says so (log
line, /metrics)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.db import ids
from app.storage.sweep import claim
from tests.conftest import DEMO
from tests.storage.conftest import backend_env, stored, upload
from tests.support.s3 import CREDENTIALS, S3Server, client_for
from tests.support.servers import ServerProcess, served_app, start_server

FAST = {"CONVECT_STORAGE_SWEEP_INTERVAL": "1", "CONVECT_STORAGE_SWEEP_MIN_AGE": "2"}


@pytest.fixture(scope="module")
def sweeping_server(
    backend: str, services: dict[str, str], data_dir: Path, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    """The demo app on a database of its own, sweeping every second."""
    name = f"sweep_{backend}"
    extra = {**backend_env(backend, request, name.replace("_", "-")), **FAST}
    with served_app(services, name, DEMO, data_dir / name, **extra) as server:
        yield server


async def counter(server: ServerProcess, name: str) -> float:
    """A counter's value in the server's /metrics."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        text = (await client.get("/metrics")).text
    found = re.search(rf"^{name}_total (\S+)$", text, re.M)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


async def put_orphan(server: ServerProcess, storage_id: str) -> None:
    """Bytes of a file that has no `_storage` document, in the server's backend."""
    env = server.env
    if env.get("CONVECT_STORAGE") == "s3":
        client = client_for(env)
        key = f"{env['CONVECT_S3_PREFIX']}/{storage_id}"
        await asyncio.to_thread(
            client.put_object, Bucket=env["CONVECT_S3_BUCKET"], Key=key, Body=b"left over"
        )
        return
    conn = await asyncpg.connect(env["DATABASE_URL"])
    try:
        await conn.execute(
            "INSERT INTO _convect_blobs (storage_id, seq, start, data) VALUES ($1, 0, 0, $2)",
            storage_id,
            b"left over",
        )
    finally:
        await conn.close()


async def test_an_orphan_that_appears_after_start_is_swept_within_the_period(
    sweeping_server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=sweeping_server.url, timeout=30) as client:
        kept = await upload(client, b"a file with its document")
    orphan = ids.new_id("_storage")
    await put_orphan(sweeping_server, orphan)
    assert orphan in await stored(sweeping_server)
    deadline = time.monotonic() + 30  # min age 2 s, interval 1 s: a few seconds
    while orphan in await stored(sweeping_server):
        assert time.monotonic() < deadline, "the orphan was not swept"
        await asyncio.sleep(0.2)
    assert kept in await stored(sweeping_server)
    assert await counter(sweeping_server, "convect_storage_swept") >= 1
    assert await counter(sweeping_server, "convect_storage_sweeps") >= 2
    assert re.search(r"storage sweep: removed [1-9]\d* leftover", sweeping_server.log())


async def test_only_one_process_takes_the_sweep_lease_until_it_runs_out(
    sweeping_server: ServerProcess,
) -> None:
    pool = await asyncpg.create_pool(sweeping_server.env["DATABASE_URL"], min_size=1, max_size=2)
    try:
        await pool.execute("DELETE FROM _convect_leases WHERE name = 'test'")
        first, second = await asyncio.gather(
            claim(pool, "a", 1.0, "test"), claim(pool, "b", 1.0, "test")
        )
        assert sorted([first, second]) == [False, True]
        assert await claim(pool, "c", 1.0, "test") is False
        await asyncio.sleep(1.2)
        assert await claim(pool, "c", 1.0, "test") is True  # it ran out: the next may take it
        holder = await pool.fetchval("SELECT holder FROM _convect_leases WHERE name = 'test'")
        assert holder == "c"
    finally:
        await pool.close()


def test_two_processes_of_a_deployment_do_not_both_sweep(
    s3_server: S3Server, services: dict[str, str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    s3_server.create_bucket("sweep-twice")
    env = {
        "CONVECT_STORAGE": "s3",
        "CONVECT_S3_BUCKET": "sweep-twice",
        "CONVECT_S3_ENDPOINT_URL": s3_server.url,
        "CONVECT_S3_PREFIX": "files",
        "CONVECT_STORAGE_SWEEP_INTERVAL": "60",  # both try at start; the lease lasts 60 s
        **CREDENTIALS,
    }
    with served_app(services, "sweep_twice", DEMO, data_dir / "sweep_twice", **env) as one:
        other = start_server(one.env, data_dir / "sweep_twice_other.log")
        try:
            time.sleep(2)  # both have made their first attempt
            runs = [asyncio.run(counter(p, "convect_storage_sweeps")) for p in (one, other)]
            assert sorted(runs) == [0.0, 1.0]
        finally:
            other.stop()
