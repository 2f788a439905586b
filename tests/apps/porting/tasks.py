"""Tasks: Convex's two-argument db forms, derived validators, live counts, byte-limited
pages, staged indexes, identities as values."""

from app.server import mutation, query
from app.values import ConvexError, v

from .schema import task, task_patch, task_summary


@mutation(args=task.fields, returns=v.id("tasks"))
async def create(ctx, args):
    """Insert a task (the args validator is the table's, extended from a shared one)."""
    return await ctx.db.insert("tasks", args)


@query(args={"id": v.id("tasks")})
async def get(ctx, args):
    """`ctx.db.get(table, id)`."""
    return await ctx.db.get("tasks", args["id"])


@query(args={"id": v.id("tasks")}, returns=v.nullable(task_summary.extend({"_id": v.id("tasks")})))
async def summary(ctx, args):
    """A task's title, state and assignee (a picked validator as `returns`)."""
    doc = await ctx.db.get("tasks", args["id"])
    if doc is None:
        return None
    return {k: doc[k] for k in ("_id", "title", "done", "assignee")}


@mutation(args=task_patch.extend({"id": v.id("tasks")}))
async def update(ctx, args):
    """`ctx.db.patch(table, id, fields)` with a partial validator."""
    task_id = args.pop("id")
    await ctx.db.patch("tasks", task_id, args)


@mutation(args={"id": v.id("tasks"), "doc": task})
async def overwrite(ctx, args):
    """`ctx.db.replace(table, id, doc)`."""
    await ctx.db.replace("tasks", args["id"], args["doc"])


@mutation(args={"id": v.id("tasks")})
async def remove(ctx, args):
    """`ctx.db.delete(table, id)`."""
    await ctx.db.delete("tasks", args["id"])


@mutation(args={"table": v.string(), "id": v.string(), "op": v.string()})
async def wrong_table(ctx, args):
    """Call a two-argument form with the id of another table (an error in all four)."""
    table, doc_id = args["table"], args["id"]
    if args["op"] == "get":
        await ctx.db.get(table, doc_id)
    elif args["op"] == "patch":
        await ctx.db.patch(table, doc_id, {"title": "x"})
    elif args["op"] == "replace":
        await ctx.db.replace(table, doc_id, {"title": "x"})
    else:
        await ctx.db.delete(table, doc_id)
    raise ConvexError("the call was not refused")


@query(args={"project": v.string(), "done": v.optional(v.boolean())})
async def count(ctx, args):
    """Live count of a project's tasks (open or done when `done` is given)."""

    def rng(q):
        q = q.eq("project", args["project"])
        return q.eq("done", args["done"]) if "done" in args else q

    return await ctx.db.query("tasks").with_index("by_project_done", rng).count()


@query(args={"project": v.string()})
async def count_unassigned(ctx, args):
    """Count over a filtered range."""
    return await (
        ctx.db.query("tasks")
        .with_index("by_project_done", lambda q: q.eq("project", args["project"]))
        .filter(lambda q: q.eq(q.field("assignee"), None))
        .count()
    )


@query(args={"project": v.string(), "paginationOpts": v.any()})
async def page(ctx, args):
    """A page of a project's tasks (Convex's pagination options, `maximumBytesRead` too)."""
    return await (
        ctx.db.query("tasks")
        .with_index("by_project_done", lambda q: q.eq("project", args["project"]))
        .paginate(args["paginationOpts"])
    )


@query(args={"assignee": v.string()})
async def by_assignee(ctx, args):
    """A staged index until the schema enables it."""
    return await (
        ctx.db.query("tasks")
        .with_index("by_assignee", lambda q: q.eq("assignee", args["assignee"]))
        .collect()
    )


@query(args={"text": v.string(), "project": v.string()})
async def search(ctx, args):
    """A staged search index until the schema enables it."""
    return await (
        ctx.db.query("tasks")
        .with_search_index(
            "search_title", lambda q: q.search("title", args["text"]).eq("project", args["project"])
        )
        .collect()
    )


@query(args={})
async def whoami(ctx, args):
    """The caller's identity, returned as it is (a plain object on the wire)."""
    return await ctx.auth.get_user_identity()


identity = v.object(
    {
        "tokenIdentifier": v.string(),
        "subject": v.string(),
        "issuer": v.string(),
        "email": v.optional(v.string()),
        "role": v.optional(v.string()),
    }
)


@query(args={}, returns=v.nullable(identity))
async def whoami_checked(ctx, args):
    """The identity returned under a `returns` validator: checked as the plain object."""
    return await ctx.auth.get_user_identity()
