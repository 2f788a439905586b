"""A mutation's inserts and updates are held back and sent with its commit-log row: one
statement for all of them, while every read in the mutation still sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.auth import Principal
from app.compose import build_engine
from app.db import transaction
from app.db.transaction import _chunks
from app.engine import Engine
from app.engine.registry import load_registry
from app.settings import Settings
from tests.support.apps import write_app
from tests.support.servers import create_database

FUNCTIONS = {
    "schema.py": """
        from app.schema import define_schema, define_table
        from app.values import v

        schema = define_schema({
            "items": define_table({"name": v.string(), "n": v.number()}).index("by_name", ["name"]),
            "accounts": define_table({"balance": v.number()}),
        })
    """,
    "items.py": """
        from app.server import mutation, query
        from app.values import v

        @mutation(args={"names": v.array(v.string())})
        async def add(ctx, args):
            return [await ctx.db.insert("items", {"name": s, "n": 0}) for s in args["names"]]

        @mutation(args={"id": v.id("items"), "new": v.array(v.string())})
        async def mixed(ctx, args):
            ids = [await ctx.db.insert("items", {"name": s, "n": 1}) for s in args["new"]]
            doc = await ctx.db.get(args["id"])
            await ctx.db.patch(args["id"], {"n": doc["n"] + 1})
            await ctx.db.patch(ids[0], {"n": 5})
            return ids

        @mutation(args={"id": v.id("items")})
        async def read_own_writes(ctx, args):
            new = await ctx.db.insert("items", {"name": "zz", "n": 1})
            await ctx.db.patch(args["id"], {"name": "zz"})
            await ctx.db.patch(new, {"n": 2})
            got = await ctx.db.get(new)
            ranged = await ctx.db.query("items").with_index("by_name", lambda q: q.eq("name", "zz")).collect()
            await ctx.db.delete(new)
            after = await ctx.db.query("items").with_index("by_name", lambda q: q.eq("name", "zz")).collect()
            return [got["n"], sorted(d["n"] for d in ranged), [d["_id"] for d in after]]

        @mutation(args={"id": v.id("items"), "other": v.id("items")})
        async def read_other(ctx, args):
            doc = await ctx.db.get(args["id"])
            other = await ctx.db.get(args["other"])
            await ctx.db.patch(args["id"], {"n": doc["n"] + other["n"]})

        @mutation(args={"n": v.number()})
        async def patch_all(ctx, args):
            docs = await ctx.db.query("items").collect()
            for d in docs:
                await ctx.db.patch(d["_id"], {"n": args["n"]})
            return len(docs)

        @mutation(args={"names": v.array(v.string())})
        async def add_then_fail(ctx, args):
            for s in args["names"]:
                await ctx.db.insert("items", {"name": s, "n": 0})
            raise ValueError("no")

        @mutation(args={})
        async def nothing(ctx, args):
            return 1

        @mutation(args={"names": v.array(v.string())})
        async def nested_first(ctx, args):
            await ctx.run_mutation("items:add", {"names": args["names"]})
            return await ctx.db.insert("items", {"name": "outer", "n": 0})

        @query(args={})
        async def all(ctx, args):
            return await ctx.db.query("items").collect()
    """,
    "accounts.py": """
        import asyncio
        from app.server import mutation
        from app.values import v

        arrived = []
        both = asyncio.Event()

        @mutation(args={"n": v.number()})
        async def open_many(ctx, args):
            return [await ctx.db.insert("accounts", {"balance": 0}) for _ in range(int(args["n"]))]

        gates = {}

        @mutation(args={"id": v.id("accounts"), "gate": v.string()})
        async def bump(ctx, args):
            doc = await ctx.db.get(args["id"])
            if args["gate"]:  # wait until the gate opens (a retry finds it open)
                gate = gates.setdefault(args["gate"], asyncio.Event())
                await asyncio.wait_for(gate.wait(), 10)
            await ctx.db.patch(args["id"], {"balance": doc["balance"] + 1})
            return doc["balance"] + 1

        @mutation(args={"a": v.id("accounts"), "b": v.id("accounts"), "gate": v.string()})
        async def read_pair(ctx, args):
            first = await ctx.db.get(args["a"])
            if args["gate"]:
                gate = gates.setdefault(args["gate"], asyncio.Event())
                await asyncio.wait_for(gate.wait(), 10)
            second = await ctx.db.get(args["b"])
            return [first["balance"], second["balance"]]

        @mutation(args={"id": v.id("accounts")})
        async def fail_after_read(ctx, args):
            await ctx.db.get(args["id"])
            raise ValueError("no")

        @mutation(args={"gate": v.string()})
        async def open_gate(ctx, args):
            gates.setdefault(args["gate"], asyncio.Event()).set()

        @mutation(args={"read": v.id("accounts"), "write": v.id("accounts")})
        async def read_one_write_another(ctx, args):
            await ctx.db.get(args["read"])
            arrived.append(1)
            if len(arrived) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), 10)  # both have read before either writes
            doc = await ctx.db.get(args["write"])
            await ctx.db.patch(args["write"], {"balance": doc["balance"] + 1})
    """,
}
ADMIN = Principal(None, True)


@pytest.fixture
async def engine(services: dict[str, str], tmp_path: Path) -> AsyncIterator[Engine]:
    """A started serve engine of a small app with one indexed table."""
    url = await create_database(services["database_url"], "held_writes")
    folder = write_app(tmp_path / "app", FUNCTIONS)
    settings = Settings(
        database_url=url,
        redis_url=services["redis_url"],
        functions=str(folder),
        data_dir=str(tmp_path / "data"),
    )
    eng = build_engine(settings, load_registry(folder), "dev")
    async with eng:
        yield eng


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, str]]]:
    """Every statement any asyncpg connection sends, with the connection's id (a spy:
    each still runs)."""
    sent: list[tuple[int, str]] = []
    for name in ("execute", "fetch", "fetchrow", "fetchval"):
        original = getattr(asyncpg.Connection, name)

        def spy(self: Any, query: str, *args: Any, _original: Any = original, **kw: Any) -> Any:
            sent.append((id(self), query))
            return _original(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, name, spy)
    yield sent


async def call(eng: Engine, path: str, args: dict[str, Any]) -> Any:
    outcome = await eng.call(path, args, ADMIN, "mutation" if ":all" not in path else "query")
    assert outcome.error is None, outcome.error
    return outcome.value


async def test_a_mutation_sends_its_writes_and_commit_log_row_in_one_statement(
    engine: Engine, statements: list[tuple[int, str]]
) -> None:
    [first] = await call(engine, "items:add", {"names": ["a"]})
    statements.clear()
    engine.executor.serial.add("items:mixed")  # as a mutation that needs SERIALIZABLE
    await call(engine, "items:mixed", {"id": first, "new": ["b", "c", "d"]})
    [conn] = {c for c, sql in statements if sql.startswith("BEGIN ISOLATION LEVEL SERIALIZABLE")}
    mine = [sql for c, sql in statements if c == conn]
    # BEGIN, the read of `first`, the writes with the commit-log row, COMMIT
    assert len(mine) == 4, mine
    assert "INSERT INTO _convect_commits" in mine[2] and "UPDATE" in mine[2]
    docs = {d["name"]: d["n"] for d in await call(engine, "items:all", {})}
    assert docs == {"a": 1.0, "b": 5.0, "c": 1.0, "d": 1.0}


async def test_reads_in_a_mutation_see_its_held_back_writes(engine: Engine) -> None:
    [first] = await call(engine, "items:add", {"names": ["a"]})
    got, ranged, after = await call(engine, "items:read_own_writes", {"id": first})
    assert got == 2.0 and ranged == [0.0, 2.0] and after == [first]
    docs = {d["name"]: d["n"] for d in await call(engine, "items:all", {})}
    assert docs == {"zz": 0.0}


async def test_many_held_back_writes_are_cut_into_statements_postgresql_accepts(
    engine: Engine,
) -> None:
    await call(engine, "items:add", {"names": [f"n{i}" for i in range(3000)]})
    assert await call(engine, "items:patch_all", {"n": 7}) == 3000
    docs = await call(engine, "items:all", {})
    assert len(docs) == 3000 and {d["n"] for d in docs} == {7.0}


def test_chunks_keep_each_run_under_the_parameter_limit() -> None:
    parts = [("s", [1, 2, 3])] * 10
    runs = _chunks(parts, 7)
    assert [len(chunk) for chunk, _ in runs] == [2] * 5
    assert [last for _, last in runs] == [False] * 4 + [True]
    assert _chunks([("big", list(range(20)))], 7) == [([("big", list(range(20)))], True)]


def test_chunks_keep_each_run_under_the_part_limit() -> None:
    runs = _chunks([("s", [1])] * 5, 100, max_parts=2)
    assert [len(chunk) for chunk, _ in runs] == [2, 2, 1]


async def test_mutations_on_different_rows_of_a_small_analyzed_table_do_not_conflict(
    engine: Engine,
) -> None:
    """A small table's statistics make the planner prefer a sequential scan to the
    primary key, and under SERIALIZABLE that predicate-locks the whole table: two
    mutations touching four different rows would conflict."""
    ids_ = await call(engine, "accounts:open_many", {"n": 100})
    async with engine.pool.acquire() as conn:
        await conn.execute('ANALYZE docs."accounts"')
    first, second = await asyncio.gather(
        engine.call(
            "accounts:read_one_write_another", {"read": ids_[0], "write": ids_[1]}, ADMIN,
            "mutation",
        ),
        engine.call(
            "accounts:read_one_write_another", {"read": ids_[2], "write": ids_[3]}, ADMIN,
            "mutation",
        ),
    )  # fmt: skip
    assert first.error is None and second.error is None
    assert (first.retries, second.retries) == (0, 0)


def on_one_connection(statements: list[tuple[int, str]], marker: str) -> list[str]:
    """The statements of the one connection that sent a statement containing `marker`."""
    [conn] = {c for c, sql in statements if marker in sql}
    return [sql for c, sql in statements if c == conn]


async def test_an_insert_only_mutation_is_one_statement_without_begin_or_commit(
    engine: Engine, statements: list[tuple[int, str]]
) -> None:
    """Nothing is read before the commit: the inserts and the commit-log row go as one
    statement, which is its own transaction (one round trip, not three)."""
    await call(engine, "items:add", {"names": ["a", "b"]})
    mine = on_one_connection(statements, "INSERT INTO _convect_commits")
    assert len(mine) == 1, mine
    assert 'INSERT INTO docs."items"' in mine[0]
    docs = sorted(d["name"] for d in await call(engine, "items:all", {}))
    assert docs == ["a", "b"]
    async with engine.pool.acquire() as conn:
        assert not conn.is_in_transaction()


async def test_a_failing_insert_only_mutation_sends_nothing_and_leaves_no_transaction(
    engine: Engine, statements: list[tuple[int, str]]
) -> None:
    def mutation_statements() -> list[str]:
        words = ("BEGIN", "COMMIT", "ROLLBACK", 'docs."items"', "_convect_commits (")
        return [sql for _, sql in statements if any(w in sql for w in words)]

    await call(engine, "items:add", {"names": ["kept"]})  # the table exists from here on
    statements.clear()
    outcome = await engine.call("items:add_then_fail", {"names": ["x"]}, ADMIN, "mutation")
    assert outcome.error is not None
    assert mutation_statements() == [], mutation_statements()
    outcome = await engine.call("items:nothing", {}, ADMIN, "mutation")
    assert outcome.error is None and outcome.value == 1
    assert mutation_statements() == []
    assert [d["name"] for d in await call(engine, "items:all", {})] == ["kept"]


async def test_an_insert_only_mutation_cut_into_several_statements_is_one_transaction(
    engine: Engine, statements: list[tuple[int, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transaction, "MAX_PARAMS", 8)  # each row its own statement
    await call(engine, "items:add", {"names": ["a", "b", "c"]})
    mine = on_one_connection(statements, "INSERT INTO _convect_commits")
    assert mine[0].startswith("BEGIN ISOLATION LEVEL SERIALIZABLE") and mine[-1] == "COMMIT"
    assert len(mine) > 3
    assert sorted(d["name"] for d in await call(engine, "items:all", {})) == ["a", "b", "c"]


async def test_a_nested_mutation_first_opens_the_transaction_for_its_savepoint(
    engine: Engine,
) -> None:
    await call(engine, "items:nested_first", {"names": ["in1", "in2"]})
    docs = sorted(d["name"] for d in await call(engine, "items:all", {}))
    assert docs == ["in1", "in2", "outer"]


async def test_a_mutation_that_writes_what_it_read_commits_optimistically(
    engine: Engine, statements: list[tuple[int, str]]
) -> None:
    """Reads by id, each on its own, then one statement that updates each document only
    at the version read, with the inserts and the commit-log row: no BEGIN, no COMMIT."""
    [first] = await call(engine, "items:add", {"names": ["a"]})
    statements.clear()
    await call(engine, "items:mixed", {"id": first, "new": ["b", "c", "d"]})
    mine = on_one_connection(statements, "INSERT INTO _convect_commits")
    assert len(mine) == 2, mine
    assert "xmin" in mine[0] and "_convect_unchanged" in mine[1]
    docs = {d["name"]: d["n"] for d in await call(engine, "items:all", {})}
    assert docs == {"a": 1.0, "b": 5.0, "c": 1.0, "d": 1.0}
    assert "items:mixed" not in engine.executor.serial


async def test_an_optimistic_mutation_whose_read_changed_is_retried_and_loses_nothing(
    engine: Engine,
) -> None:
    [acct] = await call(engine, "accounts:open_many", {"n": 1})
    slow = asyncio.create_task(
        engine.call("accounts:bump", {"id": acct, "gate": "g1"}, ADMIN, "mutation")
    )
    await asyncio.sleep(0.2)  # `slow` has read balance 0 and waits
    assert await call(engine, "accounts:bump", {"id": acct, "gate": ""}) == 1
    await call(engine, "accounts:open_gate", {"gate": "g1"})
    outcome = await slow
    assert outcome.error is None and outcome.retries >= 1
    assert outcome.value == 2  # re-run on the new balance, not a lost update


async def test_many_concurrent_optimistic_bumps_lose_no_update(engine: Engine) -> None:
    accts = await call(engine, "accounts:open_many", {"n": 3})
    calls = [
        engine.call("accounts:bump", {"id": accts[i % 3], "gate": ""}, ADMIN, "mutation")
        for i in range(60)
    ]
    outcomes = await asyncio.gather(*calls)
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes if o.error]
    async with engine.pool.acquire() as conn:
        balances = await conn.fetch(
            "SELECT (doc->>'balance')::float AS b FROM docs.\"accounts\" WHERE id = ANY($1)",
            accts,
        )
    assert sorted(r["b"] for r in balances) == [20.0, 20.0, 20.0]


async def test_a_mutation_that_only_reads_a_document_runs_serializable_from_then_on(
    engine: Engine, statements: list[tuple[int, str]]
) -> None:
    """A document read but not written is not covered by the version check: the
    mutation is re-run SERIALIZABLE, and runs so from then on."""
    a, b = await call(engine, "items:add", {"names": ["a", "b"]})
    statements.clear()
    await call(engine, "items:read_other", {"id": a, "other": b})
    assert "items:read_other" in engine.executor.serial
    assert any(sql.startswith("BEGIN ISOLATION LEVEL SERIALIZABLE") for _, sql in statements)
    statements.clear()
    await call(engine, "items:read_other", {"id": a, "other": b})
    mine = on_one_connection(statements, "BEGIN ISOLATION LEVEL SERIALIZABLE")
    assert len(mine) == 5, mine  # BEGIN, two reads, the write with the log row, COMMIT
    docs = {d["name"]: d["n"] for d in await call(engine, "items:all", {})}
    assert docs == {"a": 0.0, "b": 0.0}


async def test_an_optimistic_mutation_that_queries_a_range_reruns_serializable(
    engine: Engine,
) -> None:
    [first] = await call(engine, "items:add", {"names": ["x"]})
    got, ranged, after = await call(engine, "items:read_own_writes", {"id": first})
    assert got == 2.0 and ranged == [0.0, 2.0] and after == [first]
    assert "items:read_own_writes" in engine.executor.serial


async def test_an_optimistic_mutation_that_writes_nothing_checks_its_reads_at_once(
    engine: Engine, statements: list[tuple[int, str]]
) -> None:
    a, b = await call(engine, "accounts:open_many", {"n": 2})
    statements.clear()
    assert await call(engine, "accounts:read_pair", {"a": a, "b": b, "gate": ""}) == [0, 0]
    checks = [sql for _, sql in statements if "_convect_unchanged" in sql]
    assert len(checks) == 1 and "accounts:read_pair" not in engine.executor.serial
    assert not [sql for _, sql in statements if sql.startswith("BEGIN ISOLATION")]


async def test_an_optimistic_read_only_mutation_never_returns_reads_of_two_moments(
    engine: Engine,
) -> None:
    """`a` changes after it was read and before `b` is: the answer [0, 0] mixed with the
    new `a` would be a state that never existed; the check sends it round again."""
    a, b = await call(engine, "accounts:open_many", {"n": 2})
    slow = asyncio.create_task(
        engine.call("accounts:read_pair", {"a": a, "b": b, "gate": "g2"}, ADMIN, "mutation")
    )
    await asyncio.sleep(0.2)  # `slow` has read `a` (balance 0) and waits
    assert await call(engine, "accounts:bump", {"id": a, "gate": ""}) == 1
    await call(engine, "accounts:open_gate", {"gate": "g2"})
    outcome = await slow
    assert outcome.error is None and outcome.retries >= 1
    assert outcome.value == [1, 0]


async def test_a_socket_mutation_stores_its_answer_in_its_one_commit_statement(
    engine: Engine, statements: list[tuple[int, str]]
) -> None:
    """The answer a resend gets rides in the optimistic commit statement; a resend of the
    same (session, request) answers it with the same commit ts and runs nothing."""
    [acct] = await call(engine, "accounts:open_many", {"n": 1})
    statements.clear()
    session = ("s-optimistic", 7)
    first = await engine.call(
        "accounts:bump", {"id": acct, "gate": ""}, ADMIN, "mutation", session=session
    )
    assert first.error is None and first.value == 1
    mine = on_one_connection(statements, "INSERT INTO _convect_commits")
    assert len(mine) == 3, mine  # the answer lookup, the read, the commit with the answer
    assert "_convect_mutation_requests" in mine[2] and "_convect_unchanged" in mine[2]
    again = await engine.call(
        "accounts:bump", {"id": acct, "gate": ""}, ADMIN, "mutation", session=session
    )
    assert (again.value, again.commit_ts) == (1, first.commit_ts)
    assert await call(engine, "accounts:read_pair", {"a": acct, "b": acct, "gate": ""}) == [1, 1]


async def test_a_read_only_socket_mutation_stores_its_answer_after_its_check(
    engine: Engine,
) -> None:
    a, b = await call(engine, "accounts:open_many", {"n": 2})
    session = ("s-read-only", 1)
    first = await engine.call(
        "accounts:read_pair", {"a": a, "b": b, "gate": ""}, ADMIN, "mutation", session=session
    )
    await call(engine, "accounts:bump", {"id": a, "gate": ""})
    again = await engine.call(
        "accounts:read_pair", {"a": a, "b": b, "gate": ""}, ADMIN, "mutation", session=session
    )
    assert first.value == again.value == [0, 0] and again.commit_ts == first.commit_ts


async def test_a_resend_that_overtakes_its_first_send_applies_once(engine: Engine) -> None:
    """The first send waits after its read; the resend commits; the first's commit then
    meets the stored answer (a unique violation, not a serialization failure, outside a
    transaction), runs again and answers from it: one bump, one answer."""
    [acct] = await call(engine, "accounts:open_many", {"n": 1})
    session = ("s-overtaken", 3)
    first = asyncio.create_task(
        engine.call("accounts:bump", {"id": acct, "gate": "g3"}, ADMIN, "mutation", session=session)
    )
    await asyncio.sleep(0.2)
    resend = await engine.call(
        "accounts:bump", {"id": acct, "gate": ""}, ADMIN, "mutation", session=session
    )
    await call(engine, "accounts:open_gate", {"gate": "g3"})
    outcome = await first
    assert outcome.error is None and (outcome.value, outcome.commit_ts) == (1, resend.commit_ts)
    assert await call(engine, "accounts:read_pair", {"a": acct, "b": acct, "gate": ""}) == [1, 1]
