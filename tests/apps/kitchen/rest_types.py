"""REST and codegen tests: functions whose validators use every kind of value.

They touch no table, so schemathesis can call them freely; `returns=` makes the
server check what it answers against the same schema the OpenAPI document states.
"""

from app.server import action, internal_query, mutation, query
from app.values import ConvexError, Int64, v

EVERYTHING = {
    "text": v.string(),
    "number": v.number(),
    "big": v.int64(),
    "flag": v.boolean(),
    "nothing": v.null(),
    "blob": v.bytes(),
    "anything": v.any(),
    "ref": v.id("rest_things"),
    "mode": v.union(v.literal("fast"), v.literal("slow"), v.literal(3), v.literal(True)),
    "tags": v.array(v.string()),
    "scores": v.record(v.string(), v.float64()),
    "point": v.object({"x": v.number(), "y": v.optional(v.number())}),
    "maybe": v.optional(v.union(v.string(), v.null())),
}


@query(args=EVERYTHING, returns=v.object(EVERYTHING))
async def echo(ctx, args):
    """Return the arguments unchanged."""
    return args


@mutation(args={"count": v.int64(), "step": v.optional(v.int64())}, returns=v.int64())
async def bump(ctx, args):
    """`count + step` (step 1 unless given), in 64-bit integers."""
    total = int(args["count"]) + int(args.get("step", 1))
    if not -(2**63) <= total < 2**63:
        raise ConvexError({"code": "OVERFLOW", "count": args["count"]})
    return Int64(total)


@action(args={"data": v.bytes()}, returns=v.object({"size": v.number(), "data": v.bytes()}))
async def reverse_bytes(ctx, args):
    """The bytes reversed, with their count."""
    return {"size": len(args["data"]), "data": args["data"][::-1]}


@query(
    args={"keys": v.record(v.union(v.literal("a"), v.literal("b")), v.boolean())},
    returns=v.array(v.string()),
)
async def true_keys(ctx, args):
    """The keys whose value is true, sorted."""
    return sorted(k for k, on in args["keys"].items() if on)


@query(returns=v.union(v.string(), v.null()))
async def loose(ctx, args):
    """Any arguments: the value of `name` when it is a string, else null."""
    name = args.get("name")
    return name if isinstance(name, str) else None


@mutation(args={"reason": v.string()})
async def refuse(ctx, args):
    """Always fail with a ConvexError carrying the reason."""
    raise ConvexError({"code": "REFUSED", "reason": args["reason"]})


@internal_query(args={})
async def hidden(ctx, args):
    """Internal: never a REST route."""
    return "hidden"
