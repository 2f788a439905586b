"""Events: a union-typed table (comments and status changes) and a v.any() table."""

from app.server import mutation, query
from app.values import v

from .schema import comment, status_change


@mutation(args={"event": v.union(comment, status_change)}, returns=v.id("events"))
async def add(ctx, args):
    """Insert either variant."""
    return await ctx.db.insert("events", args["event"])


@mutation(args={"event": v.any()})
async def add_unchecked(ctx, args):
    """Insert anything: the table's union validator decides."""
    return await ctx.db.insert("events", args["event"])


@query(args={"taskId": v.id("tasks"), "kind": v.optional(v.string())})
async def for_task(ctx, args):
    """A task's events (of one kind), by the index on the variants' shared fields."""

    def rng(q):
        q = q.eq("taskId", args["taskId"])
        return q.eq("kind", args["kind"]) if "kind" in args else q

    return await ctx.db.query("events").with_index("by_task_kind", rng).collect()


@mutation(args={"payload": v.any()})
async def store_payload(ctx, args):
    """Store any document in the v.any() table."""
    return await ctx.db.insert("payloads", args["payload"])


@query(args={"source": v.string()})
async def payloads(ctx, args):
    """Payloads from one source."""
    return await (
        ctx.db.query("payloads")
        .with_index("by_source", lambda q: q.eq("source", args["source"]))
        .collect()
    )
