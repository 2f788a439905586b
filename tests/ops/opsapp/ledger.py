"""Ledger functions for the operations tests: record tokens, fail on purpose, contend."""

import asyncio
import time

from app.server import action, api, internal, internal_mutation, mutation, query
from app.values import ConvexError, v


@mutation(args={"token": v.string(), "client": v.string(), "confirm": v.optional(v.boolean())})
async def record(ctx, args):
    """Record `token` once per call; with `confirm`, schedule a follow-up on a worker."""
    doc_id = await ctx.db.insert("ops_entries", {"token": args["token"], "client": args["client"]})
    if args.get("confirm"):
        await ctx.scheduler.run_after(0, internal.ledger.confirm, {"token": args["token"]})
    return doc_id


@internal_mutation(args={"token": v.string()})
async def confirm(ctx, args):
    """The scheduled follow-up of `record`."""
    await ctx.db.insert("ops_confirms", {"token": args["token"]})


@query(args={"client": v.string()})
async def count_for(ctx, args):
    """How many tokens `client` recorded."""
    docs = await (
        ctx.db.query("ops_entries")
        .with_index("by_client", lambda q: q.eq("client", args["client"]))
        .collect()
    )
    return len(docs)


@action(args={"token": v.string(), "ms": v.number()})
async def slow_record(ctx, args):
    """Wait `ms`, then record `token` (a call that is still running when a pod drains)."""
    await asyncio.sleep(args["ms"] / 1000)
    await ctx.run_mutation(api.ledger.record, {"token": args["token"], "client": "slow"})
    return args["token"]


@query(args={})
async def explode(ctx, args):
    """Fail with a server error (its detail stays in the server log)."""
    raise RuntimeError("kaboom from ledger:explode")


@mutation(args={"code": v.string()})
async def refuse(ctx, args):
    """Fail with a ConvexError (the app's own error)."""
    raise ConvexError({"code": args["code"]})


@mutation(args={"name": v.string(), "pause_ms": v.number()})
async def bump_slowly(ctx, args):
    """Read a counter, wait, write it: two at once on one counter always conflict."""
    doc = await (
        ctx.db.query("ops_counters")
        .with_index("by_name", lambda q: q.eq("name", args["name"]))
        .first()
    )
    await asyncio.sleep(args["pause_ms"] / 1000)
    if doc is None:
        return await ctx.db.insert("ops_counters", {"name": args["name"], "value": 1})
    await ctx.db.patch(doc["_id"], {"value": doc["value"] + 1})
    return doc["_id"]


@mutation(args={"n": v.number(), "ago_ms": v.number()})
async def schedule_overdue(ctx, args):
    """Schedule `n` follow-ups that were due `ago_ms` ago (queue depth and lag to measure)."""
    when = time.time() * 1000 - args["ago_ms"]
    for i in range(int(args["n"])):
        await ctx.scheduler.run_at(when, internal.ledger.confirm, {"token": f"overdue-{i}"})
