"""Deployment settings read from environment variables, as a Convex app reads
`process.env` (set per deployment with `convect env set` or `npx convex env set`)."""

import os

from app.server import action, query
from app.values import v


@query(args={}, returns=v.nullable(v.string()))
async def greeting(ctx, args):
    """`PORTING_GREETING`: a stored variable wins over the process's start-up value."""
    return os.environ.get("PORTING_GREETING")


@action(args={}, returns=v.nullable(v.string()))
async def greeting_in_action(ctx, args):
    """The same variable, read in an action."""
    return os.environ.get("PORTING_GREETING")
