"""Items: the seed's search with optional arguments and `take`."""

import math

from app.server import mutation, query
from app.values import UNSET, ConvexError, v


@query(
    args={
        "query": v.string(),
        "limit": v.optional(v.number()),
        "category": v.optional(v.string()),
    }
)
async def search(ctx, args):
    """Items, optionally of one category, at most `limit` (default 10)."""
    limit = args.get("limit", 10)
    if not math.isfinite(limit) or limit < 0 or limit != int(limit):
        raise ConvexError("limit must be a non-negative integer")
    limit = int(limit)
    q = ctx.db.query("items")
    if args.get("category"):
        q = q.with_index("by_category", lambda r: r.eq("category", args["category"]))
    if args["query"]:
        q = q.filter(lambda f: f.eq(f.field("name"), args["query"]))
    return await q.take(limit)


@mutation(args={"name": v.string(), "category": v.string(), "price": v.optional(v.number())})
async def add(ctx, args):
    """Add an item."""
    return await ctx.db.insert("items", args)


@query(args={"maxPrice": v.number()})
async def cheaper_than(ctx, args):
    """Items whose price is below `maxPrice` (a filter evaluated in PostgreSQL)."""
    return await (
        ctx.db.query("items")
        .filter(
            lambda q: q.and_(
                q.neq(q.field("price"), UNSET), q.lt(q.field("price"), args["maxPrice"])
            )
        )
        .collect()
    )
