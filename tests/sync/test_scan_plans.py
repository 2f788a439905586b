"""The hub's scans of the commit log stay index range scans on `xid` in their generic
plans (asyncpg prepares them; after five runs PostgreSQL may switch to a generic plan):
a scan that walks the whole log per refresh made every write slower as the log grew."""

from __future__ import annotations

import asyncpg
import pytest

from app.sync.hub import LIGHT_SCAN_SQL, SCAN_SQL
from tests.support.servers import create_database


@pytest.mark.parametrize("name", ["SCAN_SQL", "LIGHT_SCAN_SQL"])
async def test_a_scan_reads_only_the_new_commits_in_its_generic_plan(
    services: dict[str, str], name: str
) -> None:
    url = await create_database(services["database_url"], "scan_plans")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO _convect_commits (ts, writes) "
            "SELECT nextval('_convect_ts'), '[]'::jsonb FROM generate_series(1, 20000)"
        )
        await conn.execute("ANALYZE _convect_commits")
        snap = await conn.fetchrow(
            "SELECT pg_current_snapshot()::text AS s, "
            "pg_snapshot_xmin(pg_current_snapshot())::text AS x"
        )
        assert snap is not None
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        sql = {"SCAN_SQL": SCAN_SQL, "LIGHT_SCAN_SQL": LIGHT_SCAN_SQL}[name]
        await conn.execute(f"PREPARE scan(text, text) AS {sql}")
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE scan('{snap['x']}', '{snap['s']}')"
            )
        )
    finally:
        await conn.close()
    assert "_convect_commits_xid" in plan, plan
    assert "Rows Removed by Filter" not in plan, plan  # no commit read only to be dropped
