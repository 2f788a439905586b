"""Files: Convex's file storage flow (upload URL, store, serve, metadata, delete)."""

from app.server import action, internal, internal_mutation, mutation, query
from app.values import ConvexError, v


@mutation(args={})
async def generate_upload_url(ctx, args):
    """A short-lived URL: POST the file's bytes to it, get back `{"storageId": ...}`."""
    return await ctx.storage.generate_upload_url()


@mutation(args={"name": v.string(), "storageId": v.id("_storage")})
async def save(ctx, args):
    """Remember an uploaded file under a name; returns the document's id."""
    if await ctx.db.system.get(args["storageId"]) is None:
        raise ConvexError("No such file")
    return await ctx.db.insert("files", {"name": args["name"], "storageId": args["storageId"]})


@internal_mutation(args={"name": v.string(), "storageId": v.id("_storage")})
async def _save(ctx, args):
    """`save` for actions and HTTP actions."""
    return await ctx.db.insert("files", {"name": args["name"], "storageId": args["storageId"]})


async def _with_url(ctx, doc):
    url = await ctx.storage.get_url(doc["storageId"])
    meta = await ctx.db.system.get(doc["storageId"])
    return {**doc, "url": url, "size": meta["size"] if meta else None}


@query(args={})
async def list(ctx, args):
    """Every file with the URL that serves it."""
    return [await _with_url(ctx, doc) for doc in await ctx.db.query("files").collect()]


@query(args={"id": v.id("files")})
async def get(ctx, args):
    """One file with its URL, or null."""
    doc = await ctx.db.get(args["id"])
    return await _with_url(ctx, doc) if doc is not None else None


@query(args={"storageId": v.id("_storage")})
async def metadata(ctx, args):
    """`{storageId, sha256, size, contentType}` of a stored file, or null."""
    return await ctx.storage.get_metadata(args["storageId"])


@query(args={})
async def stored(ctx, args):
    """Every document of the `_storage` system table."""
    return await ctx.db.system.query("_storage").collect()


@mutation(args={"id": v.id("files")})
async def remove(ctx, args):
    """Delete a file: its document and its stored bytes, in one transaction."""
    doc = await ctx.db.get(args["id"])
    if doc is None:
        raise ConvexError("No such file")
    await ctx.storage.delete(doc["storageId"])
    await ctx.db.delete(args["id"])


@action(args={"name": v.string(), "text": v.string(), "contentType": v.optional(v.string())})
async def store_text(ctx, args):
    """Store text from an action (`ctx.storage.store`) and save it under a name."""
    content_type = args.get("contentType", "text/plain; charset=utf-8")
    storage_id = await ctx.storage.store(args["text"].encode(), content_type)
    await ctx.run_mutation(internal.files._save, {"name": args["name"], "storageId": storage_id})
    return storage_id


@action(args={"storageId": v.id("_storage")})
async def read_text(ctx, args):
    """A stored file's contents as text (`ctx.storage.get`), or null."""
    blob = await ctx.storage.get(args["storageId"])
    return await blob.text() if blob is not None else None


@action(args={"storageId": v.id("_storage")})
async def copy(ctx, args):
    """Copy a stored file (streamed: `get` then `store`); returns the new id."""
    blob = await ctx.storage.get(args["storageId"])
    if blob is None:
        raise ConvexError("No such file")
    return await ctx.storage.store(blob)


@action(args={"storageId": v.id("_storage")})
async def delete_stored(ctx, args):
    """Delete a stored file from an action."""
    await ctx.storage.delete(args["storageId"])
