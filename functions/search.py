"""Full-text search over messages (the `search_body` search index), and paging it."""

from app.server import query
from app.values import pagination_opts_validator, v


@query(args={"text": v.string(), "author": v.optional(v.string())})
async def messages(ctx, args):
    """The 20 messages that best match `text` (the last word may be a prefix)."""

    def search(q):
        q = q.search("body", args["text"])
        return q.eq("author", args["author"]) if "author" in args else q

    return await ctx.db.query("messages").with_search_index("search_body", search).take(20)


@query(args={"text": v.string(), "paginationOpts": pagination_opts_validator})
async def messages_page(ctx, args):
    """Matching messages in relevance order, a page at a time."""
    return await (
        ctx.db.query("messages")
        .with_search_index("search_body", lambda q: q.search("body", args["text"]))
        .paginate(args["paginationOpts"])
    )


@query(args={"paginationOpts": pagination_opts_validator})
async def newest_page(ctx, args):
    """All messages, newest first, a page at a time."""
    return await ctx.db.query("messages").order("desc").paginate(args["paginationOpts"])


@query(args={"paginationOpts": pagination_opts_validator})
async def oldest_page(ctx, args):
    """All messages, oldest first, a page at a time."""
    return await ctx.db.query("messages").paginate(args["paginationOpts"])
