"""Accounts: the seed's atomic transfer."""

from app.server import mutation, query
from app.values import ConvexError, v


@mutation(args={"owner": v.string(), "balance": v.number()})
async def open(ctx, args):
    """Open an account with a starting balance."""
    return await ctx.db.insert("accounts", {"owner": args["owner"], "balance": args["balance"]})


@mutation(args={"fromId": v.id("accounts"), "toId": v.id("accounts"), "amount": v.number()})
async def transfer(ctx, args):
    """Move `amount` between two accounts: both succeed or both fail."""
    if args["amount"] <= 0:
        raise ConvexError({"code": "INVALID_AMOUNT", "message": "amount must be positive"})
    source = await ctx.db.get(args["fromId"])
    target = await ctx.db.get(args["toId"])
    if source is None or target is None:
        raise ConvexError({"code": "NOT_FOUND", "message": "no such account"})
    if source["balance"] < args["amount"]:
        raise ConvexError({"code": "INSUFFICIENT_FUNDS", "balance": source["balance"]})
    await ctx.db.patch(args["fromId"], {"balance": source["balance"] - args["amount"]})
    await ctx.db.patch(args["toId"], {"balance": target["balance"] + args["amount"]})


@query(args={})
async def total(ctx, args):
    """The sum of all balances (constant under transfers)."""
    return sum(a["balance"] for a in await ctx.db.query("accounts").collect())


@query(args={"id": v.id("accounts")})
async def get(ctx, args):
    """One account by id."""
    return await ctx.db.get(args["id"])
