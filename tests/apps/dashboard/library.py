"""Functions the dashboard's tests call: a logging internal mutation, a far scheduled job."""

from app.server import action, internal, internal_mutation, mutation, query
from app.values import v


@query(args={})
async def books(ctx, args):
    """Every book, oldest first."""
    return await ctx.db.query("books").collect()


@internal_mutation(args={"title": v.string(), "year": v.number(), "note": v.optional(v.string())})
async def add_book(ctx, args):
    """Add a book and log a line naming it (internal)."""
    print(f"added book {args['title']}")
    return await ctx.db.insert("books", {"title": args["title"], "year": args["year"]})


@internal_mutation(args={"note": v.string()})
async def remind(ctx, args):
    """The job `schedule_reminder` schedules."""
    print(f"reminder: {args['note']}")


@mutation(args={"note": v.string()})
async def schedule_reminder(ctx, args):
    """Schedule `remind` an hour from now; its id."""
    return await ctx.scheduler.run_after(3_600_000, internal.library.remind, {"note": args["note"]})


@action(args={})
async def ping(ctx, args):
    """Answer at once (load for the log stream)."""
    return "pong"


@internal_mutation(args={})
async def tidy(ctx, args):
    """The cron's job: nothing to tidy in a test."""
    return None
