"""Scheduler benchmark app: batches of `run_after(0)` whose runs record their lag."""

import time

from app.server import internal, internal_mutation, mutation, query
from app.values import v


@mutation(args={"n": v.number(), "batch": v.number()})
async def schedule(ctx, args):
    """Schedule `n` runs of `run` now; each carries the time it became due."""
    for i in range(int(args["n"])):
        await ctx.scheduler.run_after(
            0, internal.lag.run, {"due": time.time() * 1000, "batch": args["batch"], "i": i}
        )


@internal_mutation(args={"due": v.number(), "batch": v.number(), "i": v.number()})
async def run(ctx, args):
    """Record when this run started, next to when it was due."""
    started = time.time() * 1000
    await ctx.db.insert("lag", {**args, "started": started})


@query(args={})
async def count(ctx, args):
    """How many runs were recorded."""
    return len(await ctx.db.query("lag").collect())
