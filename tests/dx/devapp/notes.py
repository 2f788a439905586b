"""Notes: a tiny app that tests/dx copies and edits under a running `convect dev`."""

from app.server import internal_query, mutation, query
from app.values import v

VERSION = 1


@query(args={})
async def list(ctx, args):
    """The notes' texts, tagged with the code's version."""
    docs = await ctx.db.query("notes").collect()
    return {"version": VERSION, "notes": [d["text"] for d in docs]}


@query(args={})
async def count(ctx, args):
    """How many notes there are, tagged with the code's version."""
    return {"version": VERSION, "count": len(await ctx.db.query("notes").collect())}


@internal_query(args={})
async def _texts(ctx, args):
    """The notes' texts (internal: only admin, e.g. `convect run --watch`, may call it)."""
    return [d["text"] for d in await ctx.db.query("notes").collect()]


@mutation(args={"text": v.string()})
async def add(ctx, args):
    """Add a note (and log a line)."""
    print("adding", args["text"])
    return await ctx.db.insert("notes", {"text": args["text"]})
