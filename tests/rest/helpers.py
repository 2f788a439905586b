"""Small functions folders for codegen tests (written with tests.support.apps.write_app)."""

from __future__ import annotations

# A schemaless app with a nested module folder (sub/deep.py → api.sub.deep).
BARE = {
    "notes.py": '''
        """Notes: no schema, so any table."""
        from app.server import query
        from app.values import v

        @query(args={"id": v.id("notes")})
        async def get(ctx, args):
            """One note."""
            return await ctx.db.get(args["id"])
    ''',
    "sub/deep.py": '''
        """A module two folders down."""
        from app.server import mutation
        from app.values import v

        @mutation(args={"note": v.object({"text": v.string()})})
        async def put(ctx, args):
            """Store a note."""
            return await ctx.db.insert("notes", args["note"])
    ''',
}

# One module before and after an edit: validators change, an internal function turns
# public, a function disappears.
V1 = '''
    """Notes."""
    from app.server import internal_query, query
    from app.values import v

    @query(args={"n": v.number()})
    async def find(ctx, args):
        """Find notes."""
        return []

    @internal_query(args={})
    async def secret(ctx, args):
        """Internal for now."""
        return 1

    @query(args={})
    async def gone(ctx, args):
        """Removed in V2."""
        return 0
'''

V2 = '''
    """Notes."""
    from app.server import query
    from app.values import v

    @query(
        args={"n": v.string(), "tag": v.optional(v.literal("x"))},
        returns=v.array(v.int64()),
    )
    async def find(ctx, args):
        """Find notes by name."""
        return []

    @query(args={})
    async def secret(ctx, args):
        """Public now."""
        return 1
'''
