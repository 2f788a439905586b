"""Secrets: an internal query (never reachable from clients)."""

from app.server import internal_query, mutation
from app.values import v


@internal_query(args={"id": v.id("secrets")})
async def _get_secret(ctx, args):
    """A secret by id (internal only)."""
    return await ctx.db.get(args["id"])


@mutation(args={"value": v.string()})
async def store(ctx, args):
    """Store a secret; returns its id."""
    return await ctx.db.insert("secrets", {"value": args["value"]})
