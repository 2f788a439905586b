"""`GET /metrics`: calls, latency, OCC retries, sockets, subscriptions, cache, scheduler queue."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import generate_latest

from app.engine import Engine, Failure, Outcome
from app.engine.metrics import Metrics
from app.engine.registry import load_registry
from app.http.app import create_app
from app.settings import Settings
from app.values import ConvexError
from tests.ops.conftest import ADMIN, OPSAPP, sample, scrape
from tests.support.calls import CallFailed, action, mutation, query
from tests.support.servers import ServerProcess
from tests.support.ws import SyncClient

CALLS = "convect_function_calls_total"
DURATION = "convect_function_duration_seconds"


async def _fails(coro: object) -> CallFailed:
    try:
        await coro  # type: ignore[misc]
    except CallFailed as exc:
        return exc
    raise AssertionError("the call succeeded")


async def test_calls_are_counted_by_function_kind_and_outcome(ops: httpx.AsyncClient) -> None:
    before = await scrape(ops)
    for i in range(3):
        await mutation(ops, "ledger:record", {"token": f"m{i}", "client": "c"})
    for _ in range(2):
        failed = await _fails(mutation(ops, "ledger:refuse", {"code": "NOPE"}))
        assert failed.data == {"code": "NOPE"}
    await _fails(query(ops, "ledger:explode"))
    assert await action(ops, "ledger:slow_record", {"token": "s", "ms": 120}) == "s"
    after = await scrape(ops)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    # The action's own run_mutation is a call of ledger:record too.
    assert delta(CALLS, function="ledger:record", kind="mutation", outcome="success") == 4
    assert delta(CALLS, function="ledger:refuse", kind="mutation", outcome="convex_error") == 2
    assert delta(CALLS, function="ledger:explode", kind="query", outcome="error") == 1
    assert delta(CALLS, function="ledger:slow_record", kind="action", outcome="success") == 1
    assert delta(CALLS, function="ledger:record", kind="mutation", outcome="error") == 0
    # Latency: the 120 ms action is above the 0.1 s bucket and within the 0.25 s one.
    action_labels = {"function": "ledger:slow_record", "kind": "action"}
    assert delta(f"{DURATION}_count", **action_labels) == 1
    assert delta(f"{DURATION}_bucket", le="0.1", **action_labels) == 0
    assert delta(f"{DURATION}_bucket", le="0.25", **action_labels) == 1
    assert 0.12 <= delta(f"{DURATION}_sum", **action_labels) < 0.25
    mutation_labels = {"function": "ledger:record", "kind": "mutation"}
    assert delta(f"{DURATION}_count", **mutation_labels) == 4


async def test_unknown_and_hostile_function_paths_create_no_series(ops: httpx.AsyncClient) -> None:
    hostile = ["ledger:nope", "x" * 1000, 'a"b:c\nd', "../../etc:passwd"]
    for path in hostile:
        r = await ops.post("/api/query", json={"path": path, "args": {}})
        assert r.status_code == 200 and r.json()["status"] == "error"
    text = (await ops.get("/metrics", headers=ADMIN)).text
    for path in hostile:
        assert f'function="{path}"' not in text
    assert 'function="ledger:nope"' not in text


async def test_occ_retries_are_counted_per_mutation(ops: httpx.AsyncClient) -> None:
    await mutation(ops, "ledger:bump_slowly", {"name": "hot", "pause_ms": 0})
    before = await scrape(ops)
    await asyncio.gather(
        *(mutation(ops, "ledger:bump_slowly", {"name": "hot", "pause_ms": 100}) for _ in range(4))
    )
    after = await scrape(ops)
    retries = "convect_mutation_retries_total"
    moved = sample(after, retries, function="ledger:bump_slowly") - sample(
        before, retries, function="ledger:bump_slowly"
    )
    # Four read-wait-write mutations on one document: all but one conflict at least once.
    assert moved >= 3
    calls = sample(
        after, CALLS, function="ledger:bump_slowly", kind="mutation", outcome="success"
    ) - sample(before, CALLS, function="ledger:bump_slowly", kind="mutation", outcome="success")
    assert calls == 4  # retries are not calls


async def test_sockets_subscriptions_invalidations_and_cache_are_gauged(
    ops: httpx.AsyncClient, ops_server: ServerProcess
) -> None:
    before = await scrape(ops)
    one = await SyncClient.open(ops_server.url)
    two = await SyncClient.open(ops_server.url)
    await one.add("ledger:count_for", {"client": "g"})
    await two.add("ledger:count_for", {"client": "g"})
    await two.add("ledger:count_for", {"client": "h"})
    await one.wait_query_set()
    await two.wait_query_set()
    during = await scrape(ops)

    def moved(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
        return sample(samples, name, **labels) - sample(before, name, **labels)

    assert moved(during, "convect_sync_sockets") == 2
    assert moved(during, "convect_sync_subscriptions") == 3
    assert moved(during, "convect_sync_live_queries") == 2  # one query, args, identity each
    assert moved(during, "convect_sync_reruns_total") >= 2

    # A write the subscription reads: an invalidation of a subscribed query and a re-run.
    response = await one.mutation("ledger:record", {"token": "t", "client": "g"})
    assert response["success"]
    after_write = await scrape(ops)
    assert moved(after_write, "convect_sync_invalidations_total", target="subscribed") >= 1
    assert moved(after_write, "convect_sync_reruns_total") >= 3
    assert moved(after_write, "convect_sync_commits_seen_total") >= 1

    # HTTP queries: the live result answers the same query from the cache.
    for _ in range(3):
        assert await query(ops, "ledger:count_for", {"client": "g"}) == 1
    cached = await scrape(ops)
    assert moved(cached, "convect_query_cache_hits_total") >= 3
    await query(ops, "ledger:count_for", {"client": "never-asked"})
    assert moved(await scrape(ops), "convect_query_cache_misses_total") >= 1

    await one.close()
    await two.close()
    for _ in range(100):
        gone = await scrape(ops)
        if moved(gone, "convect_sync_sockets") == 0:
            break
        await asyncio.sleep(0.05)
    assert moved(gone, "convect_sync_sockets") == 0
    assert moved(gone, "convect_sync_subscriptions") == 0


async def test_scheduler_queue_depth_and_lag_are_read_at_scrape_time(
    ops: httpx.AsyncClient,
) -> None:
    # The ops server runs no worker: overdue functions stay pending.
    empty = await scrape(ops)
    assert sample(empty, "convect_scheduler_stats_ok") == 1
    assert sample(empty, "convect_scheduler_queue_depth") == 0
    assert sample(empty, "convect_scheduler_lag_seconds") == 0
    await mutation(ops, "ledger:schedule_overdue", {"n": 3, "ago_ms": 90_000})
    await mutation(ops, "ledger:schedule_overdue", {"n": 2, "ago_ms": 5_000})
    samples = await scrape(ops)
    assert sample(samples, "convect_scheduler_queue_depth") == 5
    assert 90 <= sample(samples, "convect_scheduler_lag_seconds") < 150
    assert sample(samples, "convect_scheduler_in_progress") == 0


async def test_process_and_draining_gauges_are_exposed(ops: httpx.AsyncClient) -> None:
    samples = await scrape(ops)
    assert sample(samples, "convect_draining") == 0
    assert sample(samples, "process_resident_memory_bytes") > 0
    assert sample(samples, "convect_sync_healthy") == 1


def test_two_engines_in_one_process_keep_separate_registries() -> None:
    registry = load_registry(OPSAPP)
    record = registry.get("ledger:record")
    refuse = registry.get("ledger:refuse")
    assert record is not None and refuse is not None
    first = Metrics(Engine(Settings(), registry))
    second = Metrics(Engine(Settings(), registry))
    first.observe(record, Outcome(value="x", duration_ms=2.0))
    first.observe(refuse, Outcome(error=Failure("no", ConvexError("no").data), duration_ms=1.0))
    first.retry(record)
    one = generate_latest(first.registry).decode()
    two = generate_latest(second.registry).decode()
    assert 'function="ledger:record",kind="mutation",outcome="success"} 1.0' in one
    assert 'function="ledger:refuse",kind="mutation",outcome="convex_error"} 1.0' in one
    assert 'convect_mutation_retries_total{function="ledger:record"} 1.0' in one
    assert "ledger:" not in two


async def test_in_prod_metrics_answer_only_the_admin_key(
    ops: httpx.AsyncClient, ops_server: ServerProcess
) -> None:
    anonymous = await ops.get("/metrics")
    assert anonymous.status_code == 401 and "admin key" in anonymous.json()["message"]
    wrong = await ops.get("/metrics", headers={"Authorization": "Convex not-the-key"})
    assert wrong.status_code == 401
    assert (await ops.get("/metrics", headers=ADMIN)).status_code == 200


async def test_metrics_can_be_made_public_for_an_in_cluster_scraper() -> None:
    async def get(**settings: object) -> int:
        engine = Engine(
            Settings(mode="prod", admin_key="k" * 32, **settings), load_registry(OPSAPP)
        )
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return (await client.get("/metrics")).status_code

    assert await get() == 401
    assert await get(metrics_public=True) == 200


def test_a_short_admin_key_is_refused_in_prod_and_accepted_in_dev() -> None:
    short = Settings(mode="prod", admin_key="x" * 31)
    assert "at least 32 characters" in short.prod_problems()[0]
    assert Settings(mode="prod", admin_key="x" * 32).prod_problems() == []
    assert Settings(mode="prod").prod_problems() == ["CONVECT_ADMIN_KEY is required in prod mode"]
    assert Settings(mode="dev", admin_key="x").prod_problems() == []
