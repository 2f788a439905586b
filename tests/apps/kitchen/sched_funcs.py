"""Scheduler tests (tests/scheduler): ctx.scheduler driven by arguments, hostile ones included."""

import asyncio
import time

from app.server import action, internal, internal_action, internal_mutation, mutation, query
from app.values import ConvexError, v


@mutation(args={"delay": v.any(), "target": v.any(), "args": v.optional(v.any())})
async def schedule(ctx, args):
    """`run_after(delay, target, args)` with whatever the caller passes."""
    return await ctx.scheduler.run_after(args["delay"], args["target"], args.get("args"))


@mutation(args={"at": v.any(), "target": v.any(), "args": v.optional(v.any())})
async def schedule_at(ctx, args):
    """`run_at(at, target, args)` with whatever the caller passes."""
    return await ctx.scheduler.run_at(args["at"], args["target"], args.get("args"))


@mutation(args={"label": v.string(), "delay": v.number()})
async def schedule_record_by_object(ctx, args):
    """Schedule `record` by its function object (not a path) and read the row back."""
    scheduled_id = await ctx.scheduler.run_after(args["delay"], record, {"label": args["label"]})
    return await ctx.db.system.get(scheduled_id)


@mutation(args={"n": v.number(), "name": v.string(), "delay": v.optional(v.number())})
async def schedule_bumps(ctx, args):
    """Schedule `n` increments of counter `name`."""
    return [
        await ctx.scheduler.run_after(
            args.get("delay", 0), internal.sched_funcs.bump, {"name": args["name"]}
        )
        for _ in range(int(args["n"]))
    ]


@mutation(args={"n": v.number(), "label": v.string()})
async def schedule_records(ctx, args):
    """Schedule `n` runs of `record` with one label (no two of them conflict)."""
    for _ in range(int(args["n"])):
        await ctx.scheduler.run_after(0, record, {"label": args["label"]})


@mutation(args={"n": v.number(), "size": v.number()})
async def schedule_big(ctx, args):
    """Schedule `n` runs of `record` whose label is `size` characters long."""
    for _ in range(int(args["n"])):
        await ctx.scheduler.run_after(0, record, {"label": "x" * int(args["size"])})


@mutation(args={"name": v.string()})
async def schedule_then_raise(ctx, args):
    """Schedule an increment, then fail: nothing may be scheduled."""
    await ctx.scheduler.run_after(0, internal.sched_funcs.bump, {"name": args["name"]})
    raise ConvexError("changed my mind")


@internal_mutation(args={"name": v.string()})
async def schedule_bump_then_raise(ctx, args):
    """Nested: schedule an increment, then fail (its savepoint rolls back)."""
    await ctx.scheduler.run_after(0, internal.sched_funcs.bump, {"name": args["name"]})
    raise ConvexError("nested failure")


@mutation(args={"name": v.string()})
async def schedule_around_failed_nested(ctx, args):
    """Schedule one increment; a nested mutation schedules another and fails (caught)."""
    kept = await ctx.scheduler.run_after(0, internal.sched_funcs.bump, {"name": args["name"]})
    try:
        await ctx.run_mutation(
            internal.sched_funcs.schedule_bump_then_raise, {"name": args["name"] + "-nested"}
        )
    except ConvexError:
        pass
    return kept


@internal_mutation(args={"name": v.string()})
async def schedule_bump(ctx, args):
    """Nested: schedule an increment and succeed."""
    return await ctx.scheduler.run_after(60_000, internal.sched_funcs.bump, {"name": args["name"]})


@mutation(args={"name": v.string()})
async def schedule_list_cancel(ctx, args):
    """Schedule three (one through a nested mutation), list them with a query (not the
    cache), cancel the second, list again: what a mutation sees of its own scheduling."""
    first = await ctx.scheduler.run_after(60_000, internal.sched_funcs.bump, {"name": "a"})
    second = await ctx.run_mutation(internal.sched_funcs.schedule_bump, {"name": "b"})
    third = await ctx.scheduler.run_after(60_000, internal.sched_funcs.bump, {"name": "c"})
    listed = [d["_id"] for d in await ctx.db.system.query("_scheduled_functions").collect()]
    await ctx.scheduler.cancel(second)
    states = {
        d["_id"]: d["state"]["kind"]
        for d in await ctx.db.system.query("_scheduled_functions").collect()
    }
    return {"ids": [first, second, third], "listed": listed, "states": states}


@mutation(args={"name": v.string()})
async def create_counter(ctx, args):
    """A counter at 0."""
    return await ctx.db.insert("sched_counters", {"name": args["name"], "value": 0})


@internal_mutation(args={"name": v.string()})
async def bump(ctx, args):
    """Add 1 to counter `name` (created at 1 when missing)."""
    doc = await (
        ctx.db.query("sched_counters")
        .with_index("by_name", lambda q: q.eq("name", args["name"]))
        .unique()
    )
    if doc is None:
        await ctx.db.insert("sched_counters", {"name": args["name"], "value": 1})
    else:
        await ctx.db.patch(doc["_id"], {"value": doc["value"] + 1})


@query(args={"name": v.string()})
async def counter(ctx, args):
    """The value of counter `name` (0 when missing)."""
    doc = await (
        ctx.db.query("sched_counters")
        .with_index("by_name", lambda q: q.eq("name", args["name"]))
        .unique()
    )
    return 0 if doc is None else doc["value"]


@internal_mutation(args={"label": v.string()})
async def record(ctx, args):
    """Record a run: its label, time, and whether it ran without an identity."""
    identity = ctx.auth.get_user_identity()
    await ctx.db.insert(
        "sched_runs",
        {"label": args["label"], "at": time.time() * 1000, "anonymous": not identity},
    )


@internal_mutation(args={"label": v.string()})
async def record_then_fail(ctx, args):
    """Record a run, then fail: the record must roll back and the error be kept."""
    await ctx.db.insert("sched_runs", {"label": args["label"], "at": time.time() * 1000})
    raise ValueError(f"boom {args['label']}")


_flaky_calls: dict[str, int] = {}  # per worker process


@internal_mutation(args={"label": v.string(), "failures": v.number()})
async def flaky_record(ctx, args):
    """Fail with a serialization error the first `failures` times (in this process), then
    record a run: a transient error that outlasts the in-process retries."""
    import asyncpg

    seen = _flaky_calls.get(args["label"], 0)
    _flaky_calls[args["label"]] = seen + 1
    if seen < args["failures"]:
        raise asyncpg.exceptions.SerializationError("could not serialize access (test)")
    await ctx.db.insert("sched_runs", {"label": args["label"], "at": time.time() * 1000})


@internal_mutation(args={"label": v.string()}, returns=v.string())
async def record_bad_return(ctx, args):
    """Record a run and return a number where a string is declared."""
    await ctx.db.insert("sched_runs", {"label": args["label"], "at": time.time() * 1000})
    return 42


@internal_action(args={"label": v.string(), "seconds": v.number()})
async def slow_action(ctx, args):
    """Record a start, sleep, record an end."""
    await ctx.run_mutation(internal.sched_funcs.record, {"label": args["label"] + ":start"})
    await asyncio.sleep(args["seconds"])
    await ctx.run_mutation(internal.sched_funcs.record, {"label": args["label"] + ":end"})
    return "done"


@internal_action(args={"message": v.string()})
async def failing_action(ctx, args):
    """Fail with a message."""
    raise RuntimeError(args["message"])


@action(args={"delay": v.any(), "target": v.any(), "args": v.optional(v.any())})
async def schedule_from_action(ctx, args):
    """`run_after` from an action (its own transaction)."""
    return await ctx.scheduler.run_after(args["delay"], args["target"], args.get("args"))


@action(args={"id": v.any()})
async def cancel_from_action(ctx, args):
    """`cancel` from an action."""
    await ctx.scheduler.cancel(args["id"])


@mutation(args={"id": v.any()})
async def cancel(ctx, args):
    """`cancel` from a mutation."""
    await ctx.scheduler.cancel(args["id"])


@mutation(args={"label": v.string()})
async def schedule_record_as_caller(ctx, args):
    """Schedule `record`; return whether this mutation itself had an identity."""
    await ctx.scheduler.run_after(0, internal.sched_funcs.record, {"label": args["label"]})
    return bool(ctx.auth.get_user_identity())


@query(args={"id": v.any()})
async def scheduled(ctx, args):
    """A `_scheduled_functions` document."""
    return await ctx.db.system.get(args["id"])


@query(args={})
async def all_scheduled(ctx, args):
    """Every `_scheduled_functions` document, oldest first."""
    return await ctx.db.system.query("_scheduled_functions").collect()


@query(args={"label": v.string()})
async def runs(ctx, args):
    """Recorded runs with `label`."""
    return await (
        ctx.db.query("sched_runs")
        .with_index("by_label", lambda q: q.eq("label", args["label"]))
        .collect()
    )


@query(args={"label": v.string()})
async def count_runs(ctx, args):
    """How many runs have `label`."""
    return len(await runs.handler(ctx, args))


@mutation(args={"label": v.string()})
async def schedule_self_cancel(ctx, args):
    """Schedule `cancel_self` now; its id."""
    return await ctx.scheduler.run_after(
        0, internal.sched_funcs.cancel_self, {"label": args["label"]}
    )


@internal_mutation(args={"label": v.string()})
async def cancel_self(ctx, args):
    """Find this run's own `_scheduled_functions` row and cancel it; record a run whose
    `anonymous` says whether the row read back `canceled` in the same transaction."""
    mine = [
        d
        for d in await ctx.db.system.query("_scheduled_functions").collect()
        if d["name"] == "sched_funcs:cancel_self"
        and d["args"] == [{"label": args["label"]}]
        and d["state"]["kind"] in ("pending", "inProgress")
    ]
    await ctx.scheduler.cancel(mine[0]["_id"])
    after = await ctx.db.system.get(mine[0]["_id"])
    canceled = after["state"]["kind"] == "canceled"
    await ctx.db.insert("sched_runs", {"label": args["label"], "at": 0, "anonymous": canceled})


@query(args={"id": v.id("_scheduled_functions")})
async def scheduled_state(ctx, args):
    """The state kind of one scheduled function (None when it does not exist)."""
    doc = await ctx.db.system.get(args["id"])
    return None if doc is None else doc["state"]["kind"]
