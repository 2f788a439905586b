"""Messages: the seed's query and mutation examples."""

import math

from app.server import mutation, query
from app.values import ConvexError, v


@query(args={})
async def list(ctx, args):
    """Every message, oldest first."""
    return await ctx.db.query("messages").collect()


@query(args={"author": v.string()})
async def get_by_author(ctx, args):
    """Messages of one author, through the by_author index."""
    return await (
        ctx.db.query("messages")
        .with_index("by_author", lambda q: q.eq("author", args["author"]))
        .collect()
    )


@query(args={"author": v.string(), "count": v.optional(v.number())})
async def newest_by_author(ctx, args):
    """The newest messages of one author (10 unless `count` says otherwise)."""
    return await (
        ctx.db.query("messages")
        .with_index("by_author", lambda q: q.eq("author", args["author"]))
        .order("desc")
        .take(_count(args.get("count", 10)))
    )


def _count(n):
    """A client-supplied count as an int, or a ConvexError the client can act on."""
    if not math.isfinite(n) or n < 0 or n != int(n):
        raise ConvexError("count must be a non-negative integer")
    return int(n)


@query(args={"id": v.id("messages")})
async def get(ctx, args):
    """One message by id, or null."""
    return await ctx.db.get(args["id"])


@mutation(args={"author": v.string(), "body": v.string()})
async def create(ctx, args):
    """Insert a message; returns its id."""
    return await ctx.db.insert("messages", {"author": args["author"], "body": args["body"]})


@mutation(args={"id": v.id("messages"), "body": v.string()})
async def update(ctx, args):
    """Change a message's body."""
    await ctx.db.patch(args["id"], {"body": args["body"]})


@mutation(args={"id": v.id("messages")})
async def like(ctx, args):
    """Add one like to a message."""
    msg = await ctx.db.get(args["id"])
    if msg is None:
        raise ConvexError("Not found")
    await ctx.db.patch(args["id"], {"likes": msg.get("likes", 0) + 1})


@mutation(args={"id": v.id("messages")})
async def remove(ctx, args):
    """Delete a message."""
    await ctx.db.delete(args["id"])
