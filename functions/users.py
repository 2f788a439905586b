"""Users: read by the seed's `GET /api/users?id=` HTTP action (functions/http.py)."""

from app.server import mutation, query
from app.values import v


@query(args={"id": v.string()})
async def get(ctx, args):
    """One user by id, or null (also for a string that is not a users id)."""
    user_id = ctx.db.normalize_id("users", args["id"])
    return await ctx.db.get(user_id) if user_id is not None else None


@mutation(args={"name": v.string(), "email": v.optional(v.string())})
async def create(ctx, args):
    """Create a user; returns its id."""
    return await ctx.db.insert("users", args)
