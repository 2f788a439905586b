from app.server import mutation, query
from app.values import v


@mutation(args={"ns": v.array(v.int64()), "tag": v.string()})
async def add_counters(ctx, args):
    """Insert one counter per value."""
    for n in args["ns"]:
        await ctx.db.insert("counters", {"n": n, "tag": args["tag"]})


@query(args={"order": v.string()})
async def by_n(ctx, args):
    """Every counter's value in index order."""
    docs = await ctx.db.query("counters").with_index("by_n").order(args["order"]).collect()
    return [d["n"] for d in docs]


@query(args={"tag": v.string(), "low": v.int64(), "high": v.int64()})
async def in_range(ctx, args):
    """Values of a tag with low < n <= high, through the compound index."""
    docs = await (
        ctx.db.query("counters")
        .with_index(
            "by_tag_n",
            lambda q: q.eq("tag", args["tag"]).gt("n", args["low"]).lte("n", args["high"]),
        )
        .collect()
    )
    return [d["n"] for d in docs]


@query(args={"low": v.int64()})
async def filtered(ctx, args):
    """Values greater than `low`, through a filter (no index)."""
    docs = (
        await ctx.db.query("counters").filter(lambda q: q.gt(q.field("n"), args["low"])).collect()
    )
    return sorted(d["n"] for d in docs)


@query(args={"n": v.int64()})
async def equal(ctx, args):
    """Counters whose value is exactly `n`."""
    docs = (
        await ctx.db.query("counters").with_index("by_n", lambda q: q.eq("n", args["n"])).collect()
    )
    return [d["n"] for d in docs]


@query(args={"cursor": v.union(v.string(), v.null()), "size": v.number()})
async def page(ctx, args):
    """One page of counters in index order."""
    return (
        await ctx.db.query("counters")
        .with_index("by_n")
        .paginate({"numItems": args["size"], "cursor": args["cursor"]})
    )


@mutation(args={"bs": v.array(v.bytes())})
async def add_blobs(ctx, args):
    """Insert one blob per value."""
    for b in args["bs"]:
        await ctx.db.insert("blobs", {"b": b})


@query(args={})
async def blobs(ctx, args):
    """Every blob in index order."""
    return [d["b"] for d in await ctx.db.query("blobs").with_index("by_b").collect()]
