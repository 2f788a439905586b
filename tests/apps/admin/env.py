import os

from app.server import action, query
from app.values import v


@query(args={"name": v.string()})
async def read(ctx, args):
    return os.environ.get(args["name"])


@action(args={"name": v.string()})
async def read_in_action(ctx, args):
    return os.environ.get(args["name"])
