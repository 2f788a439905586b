"""Document latches: optimistic mutations in one process take turns on a document
instead of conflicting at commit (app.engine.latches)."""

from __future__ import annotations

import asyncio
import random

import pytest

from app.engine import Engine
from app.engine.latches import LatchDied, Latches
from tests.engine.test_held_writes import ADMIN, call, engine  # noqa: F401  (fixture)


async def test_a_second_holder_waits_until_the_first_lets_go() -> None:
    latches = Latches(wait_s=5)
    first, second = latches.holder(), latches.holder()
    await latches.acquire(first, "a")
    waiting = asyncio.create_task(latches.acquire(second, "a"))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # a document is read by one mutation at a time
    latches.release(first)
    await asyncio.wait_for(waiting, 1)
    assert second.held == ["a"] and len(latches) == 1
    latches.release(second)
    assert len(latches) == 0


async def test_a_younger_holder_that_meets_an_older_one_dies_and_an_older_one_waits() -> None:
    """Wait-die: two mutations that latched a and b, each wanting the other's, cannot
    wait for each other: the younger lets go."""
    latches = Latches(wait_s=5)
    old, young = latches.holder(), latches.holder()
    await latches.acquire(old, "a")
    await latches.acquire(young, "b")
    with pytest.raises(LatchDied):
        await latches.acquire(young, "a")
    old_waits = asyncio.create_task(latches.acquire(old, "b"))
    await asyncio.sleep(0.05)
    assert not old_waits.done()
    latches.release(young)
    await asyncio.wait_for(old_waits, 1)
    assert old.held == ["a", "b"]


async def test_a_latch_is_handed_on_in_arrival_order_skipping_one_that_gave_up() -> None:
    latches = Latches(wait_s=5)
    owner, *waiters = (latches.holder() for _ in range(4))
    await latches.acquire(owner, "a")
    tasks = []
    for w in waiters:
        tasks.append(asyncio.create_task(latches.acquire(w, "a")))
        await asyncio.sleep(0.01)
    tasks[0].cancel()  # the first waiter goes away
    await asyncio.sleep(0.01)
    latches.release(owner)
    await asyncio.wait_for(tasks[1], 1)
    assert waiters[1].held == ["a"] and not tasks[2].done()
    latches.release(waiters[1])
    await asyncio.wait_for(tasks[2], 1)
    assert waiters[2].held == ["a"] and waiters[0].held == []


async def test_a_read_still_waiting_when_its_attempt_ends_is_never_handed_the_latch() -> None:
    """Two reads of one attempt waiting at once (gathered); the attempt ends while one is
    still queued: it leaves the queue, so the latch goes to the next one, not to it."""
    latches = Latches(wait_s=5)
    owner, mine, other = latches.holder(), latches.holder(), latches.holder()
    await latches.acquire(owner, "a")
    stray = asyncio.create_task(latches.acquire(mine, "a"))
    await asyncio.sleep(0.01)
    after = asyncio.create_task(latches.acquire(other, "a"))
    await asyncio.sleep(0.01)
    latches.release(mine)  # its attempt ended (failed, or died at another read)
    latches.release(owner)
    await asyncio.wait_for(after, 1)
    assert other.held == ["a"] and mine.held == []
    with pytest.raises(asyncio.CancelledError):
        await stray


async def test_a_wait_is_bounded() -> None:
    latches = Latches(wait_s=0.05)
    first, second = latches.holder(), latches.holder()
    await latches.acquire(first, "a")
    await asyncio.wait_for(latches.acquire(second, "a"), 1)  # gives up waiting, no latch
    assert second.held == [] and first.held == ["a"]


async def test_random_workloads_never_deadlock_and_never_share_a_document() -> None:
    """Many holders latching random documents in random order all finish (no wait cycle),
    and no document is ever held by two at once."""
    latches = Latches(wait_s=30)  # long: a deadlock would show as a timeout below
    inside: dict[str, object] = {}

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        holder = latches.holder()
        docs = rng.sample("abcdefgh", rng.randint(1, 4))
        while True:
            try:
                for d in docs:
                    await latches.acquire(holder, d)
                    assert inside.setdefault(d, holder) is holder
                    await asyncio.sleep(rng.random() / 1000)
                break
            except LatchDied as died:
                for d in holder.held:
                    inside.pop(d, None)
                latches.release(holder)
                await latches.take_turn(holder, died.doc_id)
        for d in holder.held:
            assert inside.pop(d) is holder
        latches.release(holder)

    await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(200))), 20)
    assert len(latches) == 0


async def test_concurrent_bumps_of_one_document_take_turns_instead_of_conflicting(
    engine: Engine,  # noqa: F811
) -> None:
    """30 mutations incrementing the same document at once: each waits for the one
    before it instead of reading the same version and being re-run (without latches
    most of them conflict at commit and run again)."""
    [acct] = await call(engine, "accounts:open_many", {"n": 1})
    outcomes = await asyncio.gather(
        *(
            engine.call("accounts:bump", {"id": acct, "gate": ""}, ADMIN, "mutation")
            for _ in range(30)
        )
    )
    assert all(o.error is None for o in outcomes)
    assert sorted(o.value for o in outcomes) == [float(i) for i in range(1, 31)]
    assert sum(o.retries for o in outcomes) == 0
    assert len(engine.latches) == 0


async def test_a_failing_mutation_lets_go_of_its_documents(engine: Engine) -> None:  # noqa: F811
    [acct] = await call(engine, "accounts:open_many", {"n": 1})
    outcome = await engine.call("accounts:fail_after_read", {"id": acct}, ADMIN, "mutation")
    assert outcome.error is not None and len(engine.latches) == 0
    assert await call(engine, "accounts:bump", {"id": acct, "gate": ""}) == 1  # no wait
