"""Webhooks: events accepted by the signed `POST /webhook` HTTP action (functions/http.py)."""

from app.server import internal_mutation, internal_query
from app.values import v


@internal_mutation(args={"type": v.string(), "data": v.optional(v.any())})
async def process(ctx, args):
    """Record a verified webhook event (internal: only the HTTP action may call it)."""
    return await ctx.db.insert("webhook_events", args)


@internal_query(args={})
async def recent(ctx, args):
    """The 20 newest webhook events."""
    return await ctx.db.query("webhook_events").order("desc").take(20)
