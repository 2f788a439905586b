"""What the cron runs: record the time of each run."""

import time

from app.server import internal_mutation
from app.values import v


@internal_mutation(args={"source": v.string()})
async def record(ctx, args):
    """Record one run and when it happened."""
    await ctx.db.insert("ticks", {"source": args["source"], "at": time.time() * 1000})
