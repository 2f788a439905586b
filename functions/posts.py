"""Posts: the seed's auth examples (myPosts, a role check) and whoami."""

from app.server import mutation, query
from app.values import ConvexError, v


@query(args={})
async def my_posts(ctx, args):
    """The caller's posts; an empty list when signed out (the seed's myPosts)."""
    identity = await ctx.auth.get_user_identity()
    if not identity:
        return []
    return await (
        ctx.db.query("posts")
        .with_index("by_author", lambda q: q.eq("author", identity.subject))
        .collect()
    )


@mutation(args={"title": v.string()})
async def create(ctx, args):
    """Publish a post as the caller."""
    identity = await ctx.auth.get_user_identity()
    if identity is None:
        raise ConvexError("Not authenticated")
    return await ctx.db.insert("posts", {"author": identity.subject, "title": args["title"]})


@mutation(args={"id": v.id("posts")})
async def remove_any(ctx, args):
    """Delete any post: admins only (the seed's role check)."""
    identity = await ctx.auth.get_user_identity()
    if not identity:
        raise ConvexError("Not authenticated")
    if identity.get("role") != "admin":
        raise ConvexError("Not authorized")
    await ctx.db.delete(args["id"])


@query(args={})
async def whoami(ctx, args):
    """The caller's identity as Convex exposes it, or null."""
    identity = ctx.auth.get_user_identity()
    if not identity:
        return None
    return {
        "subject": identity.subject,
        "tokenIdentifier": identity.token_identifier,
        "issuer": identity.issuer,
        "name": identity.get("name"),
        "role": identity.get("role"),
    }
