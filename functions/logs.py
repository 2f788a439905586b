"""Logs: internal functions, called through run_query / run_mutation and the scheduler."""

import time

from app.server import internal, internal_mutation, internal_query, mutation, query
from app.values import v

WEEK_MS = 7 * 24 * 3600 * 1000


@internal_mutation(args={"event": v.string(), "to": v.optional(v.string())})
async def record(ctx, args):
    """Append a log entry (internal)."""
    return await ctx.db.insert("logs", args)


@internal_mutation(args={"olderThan": v.number()})
async def _cleanup(ctx, args):
    """Delete log entries created before `olderThan` (ms since the epoch)."""
    old = await (
        ctx.db.query("logs")
        .filter(lambda q: q.lt(q.field("_creationTime"), args["olderThan"]))
        .collect()
    )
    for entry in old:
        await ctx.db.delete(entry["_id"])
    return len(old)


@internal_query(args={})
async def count(ctx, args):
    """How many log entries there are (internal)."""
    return len(await ctx.db.query("logs").collect())


@query(args={})
async def list(ctx, args):
    """Every log entry."""
    return await ctx.db.query("logs").collect()


@mutation(args={"event": v.string()})
async def record_twice(ctx, args):
    """Record an event through run_mutation, twice; return the count through run_query."""
    await ctx.run_mutation(internal.logs.record, {"event": args["event"]})
    await ctx.run_mutation(internal.logs.record, {"event": args["event"] + " again"})
    return await ctx.run_query(internal.logs.count, {})


@mutation(args={}, returns=v.null())
async def schedule_cleanup(ctx, args):
    """Schedule `_cleanup` of entries older than a week, right after this mutation commits."""
    await ctx.scheduler.run_after(
        0, internal.logs._cleanup, {"olderThan": time.time() * 1000 - WEEK_MS}
    )
