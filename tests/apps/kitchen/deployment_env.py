"""What Convex puts in every function's environment: the deployment's URLs."""

import os

from app.server import action, query

AT_IMPORT = {k: os.environ.get(k) for k in ("CONVEX_CLOUD_URL", "CONVEX_SITE_URL")}


@query
async def urls(ctx, args):
    """`CONVEX_CLOUD_URL` and `CONVEX_SITE_URL` as a query sees them, and at import."""
    return {
        "cloud": os.environ.get("CONVEX_CLOUD_URL"),
        "site": os.environ.get("CONVEX_SITE_URL"),
        "atImport": AT_IMPORT,
    }


@action
async def urls_in_action(ctx, args):
    """The same, from an action."""
    return {"cloud": os.environ.get("CONVEX_CLOUD_URL"), "site": os.environ.get("CONVEX_SITE_URL")}
