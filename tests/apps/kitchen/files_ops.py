"""Storage tests (tests/storage): ctx.storage driven by arguments, hostile ones included."""

from app.server import action, mutation, query
from app.values import ConvexError, v


@mutation(args={})
async def upload_url(ctx, args):
    """A fresh upload URL."""
    return await ctx.storage.generate_upload_url()


@query(args={"id": v.any()})
async def url_of(ctx, args):
    """`get_url` of any value (bad ones included)."""
    return await ctx.storage.get_url(args["id"])


@query(args={"id": v.any()})
async def metadata_of(ctx, args):
    """`get_metadata` of any value, and the `_storage` document."""
    return {
        "meta": await ctx.storage.get_metadata(args["id"]),
        "doc": await ctx.db.system.get(args["id"]),
    }


@mutation(args={"id": v.any()})
async def delete(ctx, args):
    """Delete a file in a mutation."""
    await ctx.storage.delete(args["id"])


@mutation(args={"id": v.string()})
async def delete_then_fail(ctx, args):
    """Delete a file, then fail: the delete must be rolled back."""
    await ctx.storage.delete(args["id"])
    raise ConvexError("failed after deleting")


@mutation(args={"id": v.string()})
async def delete_twice(ctx, args):
    """Delete the same file twice in one mutation (the second is an error)."""
    await ctx.storage.delete(args["id"])
    await ctx.storage.delete(args["id"])


@mutation(args={"id": v.string()})
async def delete_and_look(ctx, args):
    """Delete a file and read it back in the same transaction."""
    await ctx.storage.delete(args["id"])
    return {
        "url": await ctx.storage.get_url(args["id"]),
        "doc": await ctx.db.system.get(args["id"]),
    }


@action(args={"text": v.string(), "contentType": v.optional(v.string())})
async def store_text(ctx, args):
    """Store text from an action."""
    return await ctx.storage.store(args["text"].encode(), args.get("contentType"))


@action(args={"pieces": v.array(v.string()), "sha256": v.optional(v.string())})
async def store_pieces(ctx, args):
    """Store a file from an async generator of pieces (optionally checking its sha256)."""

    async def gen():
        for piece in args["pieces"]:
            yield piece.encode()

    return await ctx.storage.store(gen(), "text/plain", sha256=args.get("sha256"))


@action(args={"kind": v.string()})
async def store_bad(ctx, args):
    """Hand `store` something it must refuse."""
    if args["kind"] == "str":
        return await ctx.storage.store("not bytes")
    if args["kind"] == "ints":
        return await ctx.storage.store([1, 2, 3])
    if args["kind"] == "content_type":
        return await ctx.storage.store(b"x", "bad\ntype")
    if args["kind"] == "failing_stream":

        async def gen():
            yield b"x" * (3 * 1024 * 1024)
            raise RuntimeError("the source broke")

        return await ctx.storage.store(gen())
    raise ConvexError("unknown kind")


@action(args={"id": v.any(), "start": v.optional(v.number()), "stop": v.optional(v.number())})
async def read(ctx, args):
    """Read a file (or a slice) through `ctx.storage.get`; None when it does not exist."""
    blob = await ctx.storage.get(args["id"])
    if blob is None:
        return None
    start, stop = int(args.get("start", 0)), args.get("stop")
    parts = [p async for p in blob.stream(start, int(stop) if stop is not None else None)]
    return {
        "bytes": b"".join(parts),
        "size": blob.size,
        "type": blob.type,
        "sha256": blob.sha256,
        "url": await ctx.storage.get_url(args["id"]),
        "meta": await ctx.storage.get_metadata(args["id"]),
    }


@action(args={"id": v.string()})
async def delete_in_action(ctx, args):
    """Delete a file from an action."""
    await ctx.storage.delete(args["id"])
