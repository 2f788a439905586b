"""Consistent reads (/api/query_ts, /api/query_at_ts) through the npm ConvexHttpClient."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from tests.conftest import DEMO
from tests.support.npm import run_script
from tests.support.servers import ServerProcess, served_app


async def test_consistent_queries_read_at_the_timestamp_the_client_got(
    demo_server: ServerProcess, demo: httpx.AsyncClient
) -> None:
    env = {"CONVECT_URL": demo_server.url, "AUTHOR": uuid.uuid4().hex}
    out = await asyncio.to_thread(run_script, "consistent_reads.mjs", env=env)
    assert out["first"] == 1
    assert out["again"] == 1  # a later write is not seen at the earlier timestamp
    assert out["latest"] == 2
    assert out["fresh"] == 2
    assert out["concurrent"] == [1, 1, 1, 1, 1]


def test_a_timestamp_past_the_window_is_refused_not_read_at_the_latest(
    services: dict[str, str], data_dir: Path
) -> None:
    extra = {"CONVECT_CONSISTENT_READ_SNAPSHOTS": "1", "CONVECT_CONSISTENT_READ_WINDOW": "2"}
    with served_app(services, "consistent", DEMO, data_dir / "consistent", **extra) as server:
        env = {"CONVECT_URL": server.url, "AUTHOR": uuid.uuid4().hex, "MODE": "window"}
        out = run_script("consistent_reads.mjs", env=env)
        with httpx.Client(base_url=server.url) as client:
            bad = client.post(
                "/api/query_at_ts",
                json={"path": "messages:list", "args": {}, "ts": "not a timestamp"},
            )
    assert out["first"] == 1
    assert out["other"] == 2
    for refused in (out["evicted"], out["expired"]):
        assert "OutOfRetention" in refused["error"]
        assert "too early, retry with a higher timestamp" in refused["error"]
        assert "CONVECT_CONSISTENT_READ_WINDOW" in refused["error"]
    assert bad.status_code == 400 and bad.json()["code"] == "BadJsonBody"
