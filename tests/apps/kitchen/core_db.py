"""Core engine tests: a generic reader and writer over `ctx.db`, driven by arguments.

`select` builds a query from plain data, so one function exercises every index range,
order, filter operator and terminal method (and hostile table/index/field names).
Filter expressions: `{"field": "a.b"}`, `{"unset": true}`, `{"lit": value}`, a bare
scalar, or `[op, *args]` with op one of the FilterBuilder methods.
"""

from app.server import mutation, query
from app.values import UNSET, v

RANGE_OPS = ("eq", "gt", "gte", "lt", "lte")
FILTER_OPS = {
    "and": "and_",
    "or": "or_",
    "not": "not_",
    **{
        name: name
        for name in ("eq", "neq", "lt", "lte", "gt", "gte", "add", "sub", "mul", "div", "mod")
    },
    "neg": "neg",
}


def build(q, expr):
    """Turn a plain-data filter expression into a FilterBuilder expression."""
    if isinstance(expr, dict):
        if "field" in expr:
            return q.field(expr["field"])
        if expr.get("unset"):
            return UNSET
        return expr["lit"]
    if isinstance(expr, list):
        op, *rest = expr
        return getattr(q, FILTER_OPS[op])(*(build(q, e) for e in rest))
    return expr


@query(
    args={
        "table": v.string(),
        "index": v.optional(v.string()),
        "range": v.optional(v.array(v.array(v.any()))),
        "filter": v.optional(v.any()),
        "order": v.optional(v.string()),
        "mode": v.optional(v.string()),
        "n": v.optional(v.number()),
    }
)
async def select(ctx, args):
    """Query `table` as the arguments describe; `mode`: collect take first unique iter."""
    q = ctx.db.query(args["table"])
    if "index" in args:

        def rng(r):
            for op, name, value in args.get("range", []):
                if op not in RANGE_OPS:
                    raise ValueError(f"bad range op {op}")
                r = getattr(r, op)(name, value)
            return r

        q = q.with_index(args["index"], rng)
    if "filter" in args:
        q = q.filter(lambda f: build(f, args["filter"]))
    if "order" in args:
        q = q.order(args["order"])
    mode = args.get("mode", "collect")
    if mode == "take":
        return await q.take(args["n"])
    if mode == "first":
        return await q.first()
    if mode == "unique":
        return await q.unique()
    if mode == "iter":
        return [doc async for doc in q]
    return await q.collect()


@query(args={"id": v.string()})
async def get(ctx, args):
    """Any document by id (the id is not validated by the args)."""
    return await ctx.db.get(args["id"])


@query(args={"table": v.string(), "id": v.any()})
async def normalize(ctx, args):
    """`ctx.db.normalize_id(table, id)`."""
    return ctx.db.normalize_id(args["table"], args["id"])


@query(args={"table": v.string()})
async def system_list(ctx, args):
    """Every document of a system table (`_storage`, `_scheduled_functions`)."""
    return await ctx.db.system.query(args["table"]).collect()


@query(args={"id": v.string()})
async def system_get(ctx, args):
    """`ctx.db.system.get(id)`."""
    return await ctx.db.system.get(args["id"])


@query(args={"table": v.string()})
async def user_reads_system(ctx, args):
    """`ctx.db.query` on a system table: must be refused."""
    return await ctx.db.query(args["table"]).collect()


@mutation(args={"table": v.string(), "doc": v.any()})
async def insert(ctx, args):
    """Insert one document; returns its id."""
    return await ctx.db.insert(args["table"], args["doc"])


@mutation(args={"table": v.string(), "docs": v.array(v.any())})
async def insert_many(ctx, args):
    """Insert documents in order; returns their ids."""
    return [await ctx.db.insert(args["table"], d) for d in args["docs"]]


@mutation(args={"id": v.string(), "fields": v.any(), "unset": v.optional(v.array(v.string()))})
async def patch(ctx, args):
    """Patch a document; names in `unset` are patched with UNSET (removed)."""
    fields = dict(args["fields"])
    for name in args.get("unset", []):
        fields[name] = UNSET
    await ctx.db.patch(args["id"], fields)
    return await ctx.db.get(args["id"])


@mutation(args={"id": v.string(), "doc": v.any()})
async def replace(ctx, args):
    """Replace a document's fields."""
    await ctx.db.replace(args["id"], args["doc"])
    return await ctx.db.get(args["id"])


@mutation(args={"id": v.string()})
async def delete(ctx, args):
    """Delete a document."""
    await ctx.db.delete(args["id"])


@mutation(args={"table": v.string(), "field": v.string(), "value": v.any()})
async def insert_field(ctx, args):
    """Insert `{field: value}`: field names straight from the caller."""
    return await ctx.db.insert(args["table"], {args["field"]: args["value"]})


@mutation(args={"table": v.string(), "depth": v.number()})
async def insert_nested(ctx, args):
    """Insert a document whose field `x` nests lists `depth` levels deep."""
    value = 1
    for _ in range(int(args["depth"])):
        value = [value]
    return await ctx.db.insert(args["table"], {"x": value})


@mutation(args={"table": v.string(), "size": v.number()})
async def insert_big(ctx, args):
    """Insert a document with a string field of `size` characters."""
    return await ctx.db.insert(args["table"], {"blob": "x" * int(args["size"])})
