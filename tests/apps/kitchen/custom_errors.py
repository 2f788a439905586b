"""Convex's `customErrors.ts` (its integration tests of error texts), ported to Python."""

from app.server import action, internal, internal_mutation, internal_query, mutation, query
from app.values import ConvexError, Int64


class FooError(ConvexError):
    """A ConvexError subclass: its texts name it by its own class."""


@query
async def query_throwing_convex_error(ctx, args):
    """Throw a ConvexError with a string."""
    raise ConvexError("Boom boom bop")


@query
async def query_throwing_normal_error(ctx, args):
    """Throw an ordinary error."""
    raise ValueError("Normal error")


@query
async def query_throwing_convex_error_subclass(ctx, args):
    """Throw a ConvexError subclass with an int64 in its data."""
    raise FooError({"message": "Boom boom bop", "code": Int64(123)})


@mutation
async def mutation_throwing_convex_error(ctx, args):
    """Throw a ConvexError with an object holding an int64 and a whole float."""
    raise ConvexError({"message": "Boom boom bop", "code": Int64(123), "n": 21.0})


@action
async def action_throwing_convex_error(ctx, args):
    """Throw a ConvexError from an action."""
    raise ConvexError("Boom boom bop")


@internal_query
async def inner_query(ctx, args):
    """A query an action runs, throwing a ConvexError."""
    raise ConvexError("Boom boom bop")


@internal_query
async def inner_query_subclass(ctx, args):
    """A query an action runs, throwing a ConvexError subclass."""
    raise FooError({"message": "Boom boom bop", "code": Int64(123)})


@internal_mutation
async def inner_mutation(ctx, args):
    """A mutation an action runs, throwing a ConvexError."""
    raise ConvexError({"message": "Boom boom bop", "code": Int64(123)})


@internal_query
async def inner_crash(ctx, args):
    """A query an action runs, failing with an ordinary error."""
    raise RuntimeError("component kaboom")


@action
async def action_calling_query_throwing_convex_error(ctx, args):
    """Run a query that throws a ConvexError."""
    return await ctx.run_query(internal.custom_errors.inner_query)


@action
async def action_calling_query_throwing_convex_error_subclass(ctx, args):
    """Run a query that throws a ConvexError subclass."""
    return await ctx.run_query(internal.custom_errors.inner_query_subclass)


@action
async def action_calling_mutation_throwing_convex_error(ctx, args):
    """Run a mutation that throws a ConvexError."""
    return await ctx.run_mutation(internal.custom_errors.inner_mutation)


@action
async def action_calling_query_throwing_error(ctx, args):
    """Run a query that fails with an ordinary error."""
    return await ctx.run_query(internal.custom_errors.inner_crash)


@query
async def failing_reader(ctx, args):
    """Read core_events, then fail the same way whatever they hold."""
    await ctx.db.query("core_events").collect()
    raise ConvexError("still failing")
