"""`convect deploy` twice at once (two pipelines, a retried Job): one applies, the other waits.

The test holds both advisory locks (migrations, schema push) itself, starts two deploys on
an empty database, waits until both are queued behind the migration lock and then both
wait for the schema-push lock, so the two runs really overlap however fast or slow the
machine is.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from app.db.deploy import DEPLOY_LOCK
from app.db.migrate import MIGRATION_LOCK
from tests.ops.conftest import OPSAPP
from tests.support.servers import ROOT, convect_env, database_url


async def _waiting_on(conn: asyncpg.Connection, key: int) -> int:
    """How many sessions wait for advisory lock `key`."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = 0 AND objid = $1",
        key,
    )
    return count


async def _until_waiting(conn: asyncpg.Connection, key: int, n: int) -> None:
    deadline = time.monotonic() + 60
    while await _waiting_on(conn, key) < n:
        assert time.monotonic() < deadline, f"{n} deploys never queued on lock {key:#x}"
        await asyncio.sleep(0.05)


async def test_two_concurrent_deploys_serialise_and_the_second_finds_nothing_to_do(
    services: dict[str, str], data_dir: Path
) -> None:
    admin = await asyncpg.connect(services["database_url"])
    try:
        await admin.execute('DROP DATABASE IF EXISTS "ops_deploy" WITH (FORCE)')
        await admin.execute('CREATE DATABASE "ops_deploy"')  # empty: not even migrated
    finally:
        await admin.close()
    url = database_url(services["database_url"], "ops_deploy")
    env = convect_env(url, services["redis_url"], OPSAPP, data_dir / "ops_deploy")

    holder = await asyncpg.connect(url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await holder.execute("SELECT pg_advisory_lock($1)", DEPLOY_LOCK)
        logs = [data_dir / f"ops_deploy_{i}.out" for i in range(2)]
        runs = []
        for path in logs:
            with open(path, "w") as out:
                runs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "app", "deploy"],
                        env=env,
                        cwd=ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        try:
            await _until_waiting(holder, MIGRATION_LOCK, 2)
            await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
            # Both ran (or waited out) the migrations; now both wait to push the schema.
            deadline = time.monotonic() + 60
            while not all("waiting for another deploy" in p.read_text() for p in logs):
                assert time.monotonic() < deadline, [p.read_text() for p in logs]
                assert all(r.poll() is None for r in runs), [p.read_text() for p in logs]
                await asyncio.sleep(0.05)
            await holder.execute("SELECT pg_advisory_unlock($1)", DEPLOY_LOCK)
            for r in runs:
                await asyncio.to_thread(r.wait, 120)
        finally:
            for r in runs:
                if r.poll() is None:
                    r.kill()
                    r.wait()
        outputs = [(p.read_text(), "") for p in logs]
        for p, (out, err) in zip(runs, outputs, strict=True):
            assert p.returncode == 0, out + err
            assert "deploy: done" in out
        applied = [out for out, _ in outputs if "schema: created table ops_entries" in out]
        idle = [out for out, _ in outputs if "schema: schema up to date" in out]
        assert len(applied) == 1 and len(idle) == 1, outputs
        assert "created" not in idle[0]
        # Both are in the deploy history; one of them recorded the change.
        recorded = [out for out, _ in outputs if "deploy: added table ops_entries" in out]
        unchanged = [out for out, _ in outputs if "deploy: no changes" in out]
        assert len(recorded) == 1 and len(unchanged) == 1, outputs
        assert await holder.fetchval("SELECT count(*) FROM _convect_deploys") == 2

        # The result is one deployment: head migration, each table once, its indexes.
        version = await holder.fetchval("SELECT version_num FROM alembic_version")
        from app.http.health import known_revisions

        assert version == known_revisions()[0]
        tables = [r["name"] for r in await holder.fetch("SELECT name FROM _convect_tables")]
        assert sorted(t for t in tables if t.startswith("ops_")) == [
            "ops_confirms",
            "ops_counters",
            "ops_entries",
        ]
        indexes = {
            r["indexname"]
            for r in await holder.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'docs' "
                "AND tablename = 'ops_entries'"
            )
        }
        assert {"ops_entries__by_token", "ops_entries__by_client"} <= indexes
        invalid = await holder.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
        assert invalid == 0  # no half-built concurrent index
    finally:
        await holder.close()
