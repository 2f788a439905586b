"""A socket cut right after its Mutation frame: resent on a new connection, applied once.

The client aborts its TCP connection (no close handshake) at once or a few
milliseconds after sending the Mutation frame, so the server sees the cut before,
while or after it runs the mutation. Like the official clients, it then reconnects
with the same session id and resends the mutation with the same request id; the answer
must be the mutation's one outcome, and the data must show it applied exactly once.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from tests.core.test_concurrency import commit_count
from tests.reliability.bank import START, balances, open_accounts, random_transfer
from tests.support.calls import mutation, query
from tests.support.servers import ServerProcess
from tests.support.ws import SyncClient

CUTS = 40


async def _cut_after_sending(url: str, session_id: str, msg: dict[str, Any], delay: float) -> None:
    c = await SyncClient.open(url, connect_msg=False)
    c.session_id = session_id
    await c.connect()
    await c.send(msg)
    if delay:
        await asyncio.sleep(delay)
    c.conn.transport.abort()  # the TCP connection is gone: no close frame, no answer read


async def _resend(url: str, session_id: str, msg: dict[str, Any]) -> dict[str, Any]:
    c = await SyncClient.open(url, connect_msg=False)
    c.session_id = session_id
    await c.connect(1, "closed with code 1006")
    await c.send(msg)
    response = await c.recv_type("MutationResponse", timeout=30)
    assert response["requestId"] == msg["requestId"]
    await c.close()
    return response


async def test_transfers_cut_mid_flight_and_resent_are_applied_exactly_once(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    rng = random.Random(8)
    accounts = await open_accounts(demo)
    ledger = dict.fromkeys(accounts, float(START))
    outcomes = {"applied": 0, "refused": 0}
    for i in range(CUTS):
        args = random_transfer(rng, accounts)
        msg = {"type": "Mutation", "requestId": i % 3, "udfPath": "accounts:transfer",
               "args": [args]}  # fmt: skip
        session = f"cut-{i}-{rng.getrandbits(64):x}"
        await _cut_after_sending(demo_server.url, session, msg, rng.choice([0, 0, 0.001, 0.003]))
        if i % 2:
            await asyncio.sleep(0.05)  # the first attempt has surely ended (ran or rolled back)
        response = await _resend(demo_server.url, session, msg)
        if response["success"]:
            ledger[args["fromId"]] -= args["amount"]
            ledger[args["toId"]] += args["amount"]
            outcomes["applied"] += 1
        else:
            assert response["errorData"]["code"] == "INSUFFICIENT_FUNDS", response
            outcomes["refused"] += 1
    assert await balances(demo, accounts) == ledger
    assert outcomes["applied"] >= CUTS // 2, outcomes
    assert demo_server.proc.poll() is None


async def test_a_slow_mutation_cut_and_resent_while_it_runs_commits_once(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    doc_id = await mutation(kitchen, "core_db:insert", {"table": "core_things", "doc": {"n": 0}})
    before = await commit_count(kitchen_server)
    for i in range(5):
        session = f"slow-cut-{i}"
        msg = {"type": "Mutation", "requestId": 0, "udfPath": "core_tx:slow_set_n",
               "args": [{"id": doc_id, "n": i + 1, "seconds": 0.3}]}  # fmt: skip
        await _cut_after_sending(kitchen_server.url, session, msg, 0.05 * i)
        response = await _resend(kitchen_server.url, session, msg)  # the first may still run
        assert response["success"], response
        assert response["result"] == i + 1
    await asyncio.sleep(0.5)
    assert await commit_count(kitchen_server) == before + 5
    assert (await query(kitchen, "core_db:get", {"id": doc_id}))["n"] == 5
