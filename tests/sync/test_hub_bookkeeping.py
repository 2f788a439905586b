"""The hub's bookkeeping: the timestamp it labels results with, and what it may cache."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import asyncpg
import orjson

from app.db.readset import ReadSet, Write
from app.engine import Outcome
from app.settings import Settings
from app.sync.hub import Entry, EntryState, Hub, frozen
from tests.support.servers import create_database


class _Index:
    """Every write to table `t` touches the entries in `hits`."""

    def __init__(self) -> None:
        self.hits: set[Any] = set()

    def match(self, write: Any) -> set[Any]:
        return set(self.hits) if write[0] == "t" else set()

    def add(self, entry: Any, read_set: Any) -> None:
        pass

    def remove(self, entry: Any) -> None:
        pass


class _Session:
    def emit(self, ts: int) -> None:
        pass


def _engine(pool: Any, call: Any = None) -> Any:
    return SimpleNamespace(
        pool=pool,
        current_ts=lambda: 0,
        advance_ts=lambda ts: None,
        call=call,
        settings=Settings(mode="prod"),
        catalog=SimpleNamespace(tracked_fields=lambda table: ()),
    )


async def test_the_hub_ts_names_a_commit_only_once_the_queries_it_touches_were_rerun(
    services: dict[str, str],
) -> None:
    # Sockets label what they send with the hub's ts (query-set changes, mutation
    # replies on other sockets): it must not name a commit whose effects an entry
    # does not hold yet.
    url = await create_database(services["database_url"], "hub_ts")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
    seen: dict[str, Any] = {}

    async def call(path: str, args: Any, principal: Any, kind: Any, *, tx: Any) -> Outcome:
        seen["ts_while_rerunning"] = hub.ts
        await asyncio.sleep(0.05)
        return Outcome(value="new")

    try:
        hub = Hub(_engine(pool, call))
        row = await pool.fetchrow(
            "SELECT pg_current_snapshot()::text AS snap, "
            "pg_snapshot_xmin(pg_current_snapshot())::text AS xmin"
        )
        assert row is not None
        hub._snapshot, hub._xmin = row["snap"], row["xmin"]
        hub._index = _Index()  # type: ignore[assignment]
        key = ("q:f", "{}", "", "")
        entry = Entry("q:f", None, False, key, value=frozen("old"), state=EntryState.FRESH)
        entry.sessions.add(_Session())
        hub._entries[entry.key] = entry
        hub._index.hits = {entry}  # type: ignore[attr-defined]
        ts = await pool.fetchval(
            "INSERT INTO _convect_commits (ts, writes) VALUES (nextval('_convect_ts'), "
            """'[["t", "x", null, {}]]'::jsonb) RETURNING ts"""
        )
        await hub._refresh()
        assert seen["ts_while_rerunning"] < ts
        assert hub.ts == ts and entry.value is not None
    finally:
        await pool.close()


def test_a_query_that_ran_across_a_local_commit_is_not_cached() -> None:
    # The commit's own refresh may not have started yet, and the query's entry was not
    # in the index when the commit looked for entries to mark dirty.
    hub = Hub(_engine(None))
    before = hub.generation()
    tx = SimpleNamespace(writes={"x": Write("t", "x", None, {"_id": "x", "_creationTime": 1.0})})
    hub.local_commit(1, tx)  # type: ignore[arg-type]
    hub.store("q:f", {}, None, False, before, ["stale"], None, ReadSet())
    assert hub.cached("q:f", {}, None, False) is None
    hub.store("q:f", {}, None, False, hub.generation(), ["fresh"], None, ReadSet())
    cached = hub.cached("q:f", {}, None, False)
    assert cached is not None and orjson.dumps(cached.value) == b'["fresh"]'
