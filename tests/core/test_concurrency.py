"""Concurrent mutations over HTTP: serializable, atomic, each success applied exactly once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.calls import CallFailed, mutation, query
from tests.support.servers import ServerProcess


async def commit_count(server: ServerProcess) -> int:
    """Commit-log rows that changed documents (one per committed mutation that wrote)."""
    conn = await asyncpg.connect(server.env["DATABASE_URL"])
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM _convect_commits WHERE writes -> 0 ->> 1 IS NOT NULL"
        )
    finally:
        await conn.close()
    return count


async def test_fifty_concurrent_transfers_keep_the_sum_and_apply_each_success_once(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    rng = random.Random(2024)
    accounts = [
        await mutation(demo, "accounts:open", {"owner": f"o{i}", "balance": 100}) for i in range(5)
    ]
    transfers = []
    for _ in range(50):
        src, dst = rng.sample(accounts, 2)
        transfers.append({"fromId": src, "toId": dst, "amount": rng.randint(1, 40)})

    async def attempt(args: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        try:
            await mutation(demo, "accounts:transfer", args)
            return args, None
        except CallFailed as exc:
            return args, exc

    results = await asyncio.gather(*(attempt(t) for t in transfers))
    ledger = dict.fromkeys(accounts, 100.0)
    succeeded = 0
    for args, error in results:
        if error is None:
            ledger[args["fromId"]] -= args["amount"]
            ledger[args["toId"]] += args["amount"]
            succeeded += 1
        else:
            assert error.data is not None, error.body  # never a server error
            assert error.data["code"] == "INSUFFICIENT_FUNDS", error.body
    final = {a: (await query(demo, "accounts:get", {"id": a}))["balance"] for a in accounts}
    assert final == ledger
    assert sum(final.values()) == 500.0
    assert await query(demo, "accounts:total") == 500.0
    assert all(balance >= 0 for balance in final.values())
    assert succeeded >= 25
    # Retried attempts never commit twice: one commit per open and per successful transfer.
    assert await commit_count(demo_server) == 5 + succeeded


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_concurrent_moves_are_atomic_even_when_they_fail_midway(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess, seed: int
) -> None:
    rng = random.Random(seed)
    n_accounts = rng.randint(2, 6)
    ids = await mutation(
        kitchen,
        "core_db:insert_many",
        {"table": "core_things", "docs": [{"balance": 1000} for _ in range(n_accounts)]},
    )
    moves = []
    for _ in range(rng.randint(20, 40)):
        src, dst = rng.sample(ids, 2)
        moves.append(
            {"fromId": src, "toId": dst, "amount": rng.randint(1, 100), "fail": rng.random() < 0.3}
        )

    async def attempt(args: dict[str, Any]) -> bool:
        try:
            await mutation(kitchen, "core_tx:move", args)
            return True
        except CallFailed as exc:
            assert exc.data == {"code": "FAILED_AFTER_DEBIT"}, exc.body
            return False

    outcomes = await asyncio.gather(*(attempt(m) for m in moves))
    assert outcomes == [not m["fail"] for m in moves]
    model = dict.fromkeys(ids, 1000.0)
    for m in moves:
        if not m["fail"]:
            model[m["fromId"]] -= m["amount"]
            model[m["toId"]] += m["amount"]
    docs = await query(kitchen, "core_db:select", {"table": "core_things"})
    assert {d["_id"]: d["balance"] for d in docs} == model
    assert await commit_count(kitchen_server) == 1 + sum(outcomes)


async def test_a_mutation_beside_a_slow_one_on_the_same_row_both_succeed_in_a_serial_order(
    kitchen: httpx.AsyncClient,
) -> None:
    """Writes are sent at commit, so the quick one does not wait for the slow one's
    sleep: whichever commits second sees the first (or is re-run), never a lost update."""
    doc_id = await mutation(kitchen, "core_db:insert", {"table": "core_things", "doc": {"n": 0}})
    slow = asyncio.create_task(
        mutation(kitchen, "core_tx:slow_set_n", {"id": doc_id, "n": 10, "seconds": 2.5})
    )
    await asyncio.sleep(0.3)  # the slow one has read and patched the document
    added = await mutation(kitchen, "core_tx:add_one", {"id": doc_id})
    assert await slow == 10.0
    final = (await query(kitchen, "core_db:get", {"id": doc_id}))["n"]
    # add_one first (the slow one re-run after it), or the slow one first
    assert (added, final) in ((1.0, 10.0), (11.0, 11.0))
