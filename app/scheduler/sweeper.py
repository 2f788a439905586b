"""The sweeper and worker leases: what keeps Redis a replaceable transport.

Every second (an arq cron, so once across all workers) the sweeper puts pending
functions due soon back on the arq queue (a no-op for jobs Redis still has) and fails
running actions whose worker's lease ran out. Workers renew their lease in PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

import orjson

from app.scheduler import documents as rows
from app.scheduler.remote import JOB_PREFIX

if TYPE_CHECKING:
    import asyncpg

    from app.engine import Call
    from app.scheduler.service import SchedulerService

log = logging.getLogger("convect.scheduler")
LOOKAHEAD_MS = 5_000  # re-add jobs due this soon, so a lost job still starts on time
BATCH = 1_000
WORKER_GONE = "Transient error while executing action: the worker running it stopped ({})"
RETENTION_MS = 7 * 86_400_000  # finished functions are kept a week, as in Convex
CLEANUP_EVERY_MS = 3_600_000
CLEANUP_BATCHES = 10  # at most this many batches of BATCH rows per cleanup


async def renew_lease(pool: asyncpg.Pool, worker_id: str, lease_s: float) -> None:
    """Register a worker, or extend its lease by `lease_s` seconds from now."""
    await pool.execute(
        "INSERT INTO _convect_workers (id, host, pid, lease_until) "
        "VALUES ($1, $2, $3, now() + make_interval(secs => $4)) "
        "ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until",
        worker_id,
        socket.gethostname(),
        os.getpid(),
        lease_s,
    )


async def end_lease(pool: asyncpg.Pool, worker_id: str) -> None:
    """Forget a worker that stopped (its in-progress actions are then failed by the sweeper)."""
    await pool.execute("DELETE FROM _convect_workers WHERE id = $1", worker_id)


async def requeue_due(service: SchedulerService, now: float) -> int:
    """Put pending functions due within the lookahead back on the arq queue; how many.

    Skipped while Redis holds at least as many jobs due by then (the sweeper's own cron
    jobs aside) as PostgreSQL has functions (pending or running) due by then: nothing was
    lost, and a backlog is not re-sent every second.
    """
    horizon = now + LOOKAHEAD_MS
    pool = service.engine.pool
    expected = await pool.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM {rows.QUEUE} WHERE due <= $1 LIMIT $2) q",
        horizon,
        BATCH,
    )
    if not expected:
        return 0
    queue = service.queue
    held = await queue.redis.zrangebyscore(queue.name, "-inf", horizon, start=0, num=2 * BATCH)
    tick, action = queue.key("tick").encode(), JOB_PREFIX.encode()
    if sum(not member.startswith((tick, action)) for member in held) >= expected:
        return 0
    found = await pool.fetch(
        f"SELECT id, due FROM {rows.QUEUE} WHERE due <= $1 AND worker IS NULL "
        "ORDER BY due LIMIT $2",
        horizon,
        BATCH,
    )
    await queue.enqueue([(r["id"], r["due"]) for r in found])
    return len(found)


async def fail_orphans(service: SchedulerService) -> int:
    """Fail running actions whose worker is gone; how many there were."""
    found = await service.engine.pool.fetch(
        f"SELECT q.id, q.worker FROM {rows.QUEUE} q "
        "WHERE q.worker IS NOT NULL AND NOT EXISTS ("
        "  SELECT 1 FROM _convect_workers w WHERE w.id = q.worker AND w.lease_until > now()"
        f") LIMIT {BATCH}"
    )
    if not found:
        return 0

    async def body(call: Call) -> int:
        assert call.tx is not None
        failed = 0
        for r in found:
            error = WORKER_GONE.format(r["worker"])
            new = await rows.end(call.tx, r["id"], rows.FAILED, worker=r["worker"], error=error)
            failed += new is not None
        return failed

    failed: int = await service.system_tx(body)
    if failed:
        log.warning("failed %d scheduled action(s) whose worker stopped", failed)
    return failed


async def cleanup_finished(service: SchedulerService, now: float) -> int:
    """Delete functions that finished more than RETENTION_MS ago; how many.

    A scan of the table (finished rows carry no index, so that state changes stay HOT),
    which is why it runs at most once an hour per worker. Deletions are commit-logged:
    live queries of `_scheduled_functions` see them go.
    """
    cutoff = now - RETENTION_MS

    async def one_batch(call: Call) -> int:
        tx = call.tx
        assert tx is not None
        found = await tx.fetch(
            f"DELETE FROM {rows.TABLE_REF} WHERE id IN (SELECT d.id FROM {rows.TABLE_REF} d "
            "WHERE (d.doc ->> 'completedTime')::float8 < $1 "
            f"AND NOT EXISTS (SELECT 1 FROM {rows.QUEUE} q WHERE q.id = d.id) LIMIT $2) "
            "RETURNING id, doc",
            cutoff,
            BATCH,
        )
        for r in found:
            tx.record_write(rows.TABLE, r["id"], orjson.loads(r["doc"]), None)
        return len(found)

    deleted = 0
    for _ in range(CLEANUP_BATCHES):
        n: int = await service.system_tx(one_batch)
        deleted += n
        if n < BATCH:
            break
    if deleted:
        log.info("deleted %d scheduled function(s) that finished over a week ago", deleted)
    return deleted


async def sweep(service: SchedulerService, now: float) -> None:
    """One pass: re-enqueue what Redis may have lost, fail orphaned actions, drop old leases,
    and (hourly) delete functions that finished over a week ago."""
    await requeue_due(service, now)
    await fail_orphans(service)
    if now - service.last_cleanup_ms >= CLEANUP_EVERY_MS:
        service.last_cleanup_ms = now
        await cleanup_finished(service, now)
    await service.engine.pool.execute(
        "DELETE FROM _convect_workers WHERE lease_until < now() - interval '1 hour'"
    )
