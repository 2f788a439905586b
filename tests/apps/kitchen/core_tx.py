"""Core engine tests: transactions, savepoints, limits, errors, log lines, values."""

import logging

from app.server import action, internal, internal_mutation, mutation, query
from app.values import ConvexError, v

log = logging.getLogger(__name__)


@query(args={"id": v.id("core_things")})
async def get_thing(ctx, args):
    """A core_things document by (validated) id."""
    return await ctx.db.get(args["id"])


@mutation(args={"id": v.id("core_things"), "n": v.number()})
async def set_n(ctx, args):
    """Patch `n` of a core_things document (validated id)."""
    await ctx.db.patch(args["id"], {"n": args["n"]})


@internal_mutation(args={"event": v.string(), "fail": v.union(v.literal("no"), v.string())})
async def record(ctx, args):
    """Record an event, then fail if asked: "convex" (ConvexError) or "crash"."""
    await ctx.db.insert("core_events", {"event": args["event"]})
    if args["fail"] == "convex":
        raise ConvexError({"code": "INNER", "event": args["event"]})
    if args["fail"] == "crash":
        raise RuntimeError("inner crashed")
    return args["event"]


@mutation(args={"fail": v.string()})
async def savepoint(ctx, args):
    """Outer writes, a failing nested mutation is caught, outer writes again."""
    await ctx.db.insert("core_events", {"event": "outer-before"})
    caught = None
    try:
        await ctx.run_mutation(internal.core_tx.record, {"event": "inner", "fail": args["fail"]})
    except ConvexError as exc:
        caught = exc.data
    except RuntimeError as exc:
        caught = str(exc)
    await ctx.run_mutation(internal.core_tx.record, {"event": "inner-ok", "fail": "no"})
    await ctx.db.insert("core_events", {"event": "outer-after"})
    return caught


@mutation(args={})
async def savepoint_then_fail(ctx, args):
    """A nested mutation succeeds, then the outer one fails: nothing is kept."""
    await ctx.run_mutation(internal.core_tx.record, {"event": "inner", "fail": "no"})
    await ctx.db.insert("core_events", {"event": "outer"})
    raise ConvexError("outer failed")


@mutation(args={"event": v.string()})
async def write_then_crash(ctx, args):
    """Write, then raise a plain exception."""
    await ctx.db.insert("core_events", {"event": args["event"]})
    raise RuntimeError("kaboom after write")


@query(args={}, returns=v.string())
async def bad_returns(ctx, args):
    """Declares a string result, returns a number."""
    return 5


@mutation(args={}, returns=v.null())
async def bad_returns_mutation(ctx, args):
    """Declares null, returns a string after writing (the write must not stay)."""
    await ctx.db.insert("core_events", {"event": "bad-returns"})
    return "oops"


@query(args={}, returns=v.object({"ok": v.boolean()}))
async def good_returns(ctx, args):
    """Returns what it declares."""
    return {"ok": True}


@query(args={"value": v.optional(v.any())}, returns=v.optional(v.string()))
async def maybe_text(ctx, args):
    """Declares an optional string: returns `value` when given, else falls through (None)."""
    if "value" in args:
        return args["value"]


@mutation(args={}, returns=v.optional(v.number()))
async def maybe_number(ctx, args):
    """Declares an optional number and returns None explicitly (Python's `undefined`)."""
    return None


@mutation(args={"count": v.number()})
async def write_many(ctx, args):
    """Insert `count` documents into core_bulk in one mutation."""
    for i in range(int(args["count"])):
        await ctx.db.insert("core_bulk", {"i": i})
    return int(args["count"])


@query(args={})
async def count_bulk(ctx, args):
    """How many core_bulk documents there are (reads every one)."""
    return len(await ctx.db.query("core_bulk").collect())


@query(args={})
async def crash(ctx, args):
    """A plain exception in a query."""
    raise KeyError("secret detail")


@query(args={"tag": v.optional(v.string())})
async def noisy(ctx, args):
    """Logs through print and logging (pass a fresh `tag` to get a fresh run, not a cached one)."""
    print("hello", "world")
    log.info("info %s", "line")
    log.warning("careful")
    log.error("bad")
    print({"a": 1})
    return "done"


@action(args={"tag": v.optional(v.string())})
async def noisy_action(ctx, args):
    """An action that prints and runs the noisy query."""
    print("from action")
    return await ctx.run_query("core_tx:noisy", args)


@query(args={"value": v.any()})
async def echo(ctx, args):
    """Return the value as received."""
    return args["value"]


@query(args={"value": v.any()})
async def describe(ctx, args):
    """The Python type of each part of the value, to check decoding."""

    def kind(x):
        if isinstance(x, dict):
            return {k: kind(val) for k, val in x.items()}
        if isinstance(x, list):
            return [kind(i) for i in x]
        return type(x).__name__

    return kind(args["value"])


@mutation(
    args={
        "fromId": v.id("core_things"),
        "toId": v.id("core_things"),
        "amount": v.number(),
        "fail": v.boolean(),
    }
)
async def move(ctx, args):
    """Debit, then (unless `fail`) credit; a failure after the debit must undo it."""
    source = await ctx.db.get(args["fromId"])
    await ctx.db.patch(args["fromId"], {"balance": source["balance"] - args["amount"]})
    if args["fail"]:
        raise ConvexError({"code": "FAILED_AFTER_DEBIT"})
    target = await ctx.db.get(args["toId"])
    await ctx.db.patch(args["toId"], {"balance": target["balance"] + args["amount"]})
    return target["balance"] + args["amount"]


@internal_mutation(args={"id": v.id("core_things"), "n": v.number()})
async def patch_then_fail(ctx, args):
    """Patch `n`, then fail: the savepoint must undo the patch."""
    await ctx.db.patch(args["id"], {"n": args["n"]})
    raise ConvexError("inner patch undone")


@mutation(args={"id": v.id("core_things")})
async def patch_around_savepoint(ctx, args):
    """Set n=1, let a nested mutation set n=2 and fail; the document keeps n=1."""
    await ctx.db.patch(args["id"], {"n": 1})
    try:
        await ctx.run_mutation(internal.core_tx.patch_then_fail, {"id": args["id"], "n": 2})
    except ConvexError:
        pass
    return (await ctx.db.get(args["id"]))["n"]


@mutation(args={"id": v.id("core_things"), "n": v.number(), "seconds": v.number()})
async def slow_set_n(ctx, args):
    """Set `n`, then hold the row lock for `seconds` before committing."""
    import asyncio

    await ctx.db.patch(args["id"], {"n": args["n"]})
    await asyncio.sleep(args["seconds"])
    return args["n"]


@mutation(args={"id": v.id("core_things")})
async def add_one(ctx, args):
    """n += 1."""
    doc = await ctx.db.get(args["id"])
    await ctx.db.patch(args["id"], {"n": doc["n"] + 1})
    return doc["n"] + 1


@query(args={"tag": v.string()})
async def two_reads(ctx, args):
    """Prints once, then reads twice (the second statement moves it into a transaction)."""
    print("reading", args["tag"])
    first = await ctx.db.query("core_events").collect()
    second = await ctx.db.query("core_things").collect()
    return [len(first), len(second)]


@action(args={"mode": v.string()})
async def action_then_fail(ctx, args):
    """Commit a mutation, then fail: "convex" (ConvexError from a nested mutation) or "crash"."""
    await ctx.run_mutation(internal.core_tx.record, {"event": "from-action", "fail": "no"})
    if args["mode"] == "convex":
        await ctx.run_mutation("core_tx:savepoint_then_fail", {})
    await ctx.run_mutation(internal.core_tx.record, {"event": "crashing", "fail": "crash"})


@mutation(args={})
async def unencodable_result(ctx, args):
    """Writes, then returns something that is not a Convex value."""
    await ctx.db.insert("core_events", {"event": "unencodable"})
    return {"a set": {1, 2}}
