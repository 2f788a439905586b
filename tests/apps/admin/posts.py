from app.server import internal_query, mutation, query
from app.values import ConvexError, v


@mutation(args={"name": v.string(), "title": v.string()})
async def add(ctx, args):
    print("adding", args["title"])
    author = await ctx.db.insert("authors", {"name": args["name"]})
    return await ctx.db.insert("posts", {"author": author, "title": args["title"]})


@query(args={})
async def titles(ctx, args):
    return [p["title"] for p in await ctx.db.query("posts").collect()]


@query(args={"id": v.id("posts")})
async def author_of(ctx, args):
    post = await ctx.db.get(args["id"])
    author = await ctx.db.get(post["author"])
    return author["name"]


@internal_query(args={})
async def secret(ctx, args):
    return "internal"


@mutation(args={})
async def fail(ctx, args):
    raise ConvexError("nope")
