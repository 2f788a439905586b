"""Actions: plain async Python outside transactions, calling queries and mutations."""

from app.server import action, api, internal
from app.values import v


@action(args={"text": v.string()})
async def echo(ctx, args):
    """Record the call through an internal mutation and echo the text back."""
    await ctx.run_mutation(internal.logs.record, {"event": "echo", "to": args["text"]})
    logged = len(await ctx.run_query(api.logs.list, {}))
    print("echoed", args["text"])
    return {"text": args["text"], "logged": logged}
