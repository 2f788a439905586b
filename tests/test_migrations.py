"""Walk every alembic revision up and down, one at a time, on a fresh database."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from alembic.script import ScriptDirectory

from app.db import migrate
from tests.support.servers import empty_database

Snapshot = dict[str, Any]


async def snapshot(url: str) -> Snapshot:
    """What the migrations manage: schemas, tables and columns, indexes, sequences, version."""
    conn = await asyncpg.connect(url)
    try:
        schemas = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
            "AND nspname NOT IN ('information_schema', 'public') ORDER BY 1"
        )
        columns = await conn.fetch(
            "SELECT table_schema, table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND table_name <> 'alembic_version' ORDER BY 1, 2, 3"
        )
        indexes = await conn.fetch(
            "SELECT schemaname, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
            "AND tablename <> 'alembic_version' ORDER BY 1, 2"
        )
        sequences = await conn.fetch(
            "SELECT sequence_schema, sequence_name FROM information_schema.sequences ORDER BY 1, 2"
        )
        has_version = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        version = (
            [r["version_num"] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
            if has_version
            else []
        )
    finally:
        await conn.close()
    return {
        "schemas": [tuple(r) for r in schemas],
        "columns": [tuple(r) for r in columns],
        "indexes": [tuple(r) for r in indexes],
        "sequences": [tuple(r) for r in sequences],
        "version": version,
    }


def revisions_base_to_head(url: str) -> list[tuple[str, str | None]]:
    """(revision, down_revision) of every migration, oldest first (a single linear history)."""
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    assert len(script.get_heads()) == 1, f"migrations have several heads: {script.get_heads()}"
    walked = list(script.walk_revisions("base", "heads"))
    walked.reverse()
    out: list[tuple[str, str | None]] = []
    for rev in walked:
        down = rev.down_revision
        assert not isinstance(down, tuple | list), f"{rev.revision} is a merge revision"
        out.append((rev.revision, down))
    return out


async def test_every_revision_upgrades_and_downgrades_cleanly(services: dict[str, str]) -> None:
    url = await empty_database(services["database_url"], "migration_walk")
    revisions = revisions_base_to_head(url)
    assert revisions, "no migrations found"
    assert revisions[0][1] is None, "the first revision must start from base"
    for (rev, down), (prev, _) in zip(revisions[1:], revisions, strict=False):
        assert down == prev, f"{rev} revises {down}, expected {prev}"

    states: dict[str | None, Snapshot] = {None: await snapshot(url)}
    assert states[None]["version"] == []
    # Up one revision at a time; each revision also goes down and up again on the way.
    for rev, down in revisions:
        await asyncio.to_thread(migrate.upgrade, url, rev)
        after = await snapshot(url)
        assert after["version"] == [rev]
        assert after != states[down], f"{rev} changed nothing"
        await asyncio.to_thread(migrate.downgrade, url, down or "base")
        assert await snapshot(url) == states[down], f"downgrading {rev} left changes behind"
        await asyncio.to_thread(migrate.upgrade, url, rev)
        assert await snapshot(url) == after, f"{rev} is not repeatable after a downgrade"
        states[rev] = after
    assert states[revisions[-1][0]]["version"] == [migrate.head_revision()]
    # Down one revision at a time, back to an empty database.
    for rev, down in reversed(revisions):
        await asyncio.to_thread(migrate.downgrade, url, down or "base")
        assert await snapshot(url) == states[down], f"downgrading {rev} left changes behind"
    # And the whole way up once more.
    await asyncio.to_thread(migrate.upgrade, url, "head")
    assert await snapshot(url) == states[revisions[-1][0]]
