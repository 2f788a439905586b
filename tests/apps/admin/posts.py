from app.server import action, internal_query, mutation, query
from app.values import ConvexError, Int64, v


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


@mutation(args={"name": v.string(), "title": v.string(), "file": v.id("_storage")})
async def add_with_file(ctx, args):
    author = await ctx.db.insert("authors", {"name": args["name"]})
    return await ctx.db.insert(
        "posts",
        {"author": author, "title": args["title"], "file": args["file"], "count": Int64(7)},
    )


@action(args={"text": v.string()})
async def store_text(ctx, args):
    return await ctx.storage.store(args["text"].encode(), "text/plain")
