"""The dashboard's system functions: admin-only, named `_system/dashboard:<name>`.

They run through the engine like any function (so queries are live subscriptions), but
live outside the app's registry: `Engine.lookup` finds them only for an admin caller.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from app.dashboard import idpaths
from app.db import deploys, index_builds
from app.db.errors import DocumentError
from app.db.sql import table_ref
from app.engine import Engine
from app.schema.names import SYSTEM_TABLES
from app.server import internal_action, internal_mutation, internal_query
from app.server.functions import RegisteredFunction
from app.server.refs import ref_path
from app.values import ConvexError, v
from app.values.jsonschema import args_schema, returns_schema

SYSTEM_MODULE = "_system/dashboard"
EXACT_COUNT_UP_TO = 100_000  # larger tables show PostgreSQL's estimate
BULK_DELETE_BATCH = 500
RECENT_DEPLOYS = 5
RANGE_OPS = ("eq", "gt", "gte", "lt", "lte")
FILTER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte")

_condition = v.object({"field": v.string(), "op": v.string(), "value": v.any()})
_selection = {
    "table": v.string(),
    "index": v.optional(v.string()),
    "range": v.optional(v.array(_condition)),
    "filters": v.optional(v.array(_condition)),
    "order": v.optional(v.union(v.literal("asc"), v.literal("desc"))),
}


def _check_ops(conditions: list[dict[str, Any]], allowed: tuple[str, ...], what: str) -> None:
    for c in conditions:
        if c["op"] not in allowed:
            raise ConvexError(f"{what}: unknown operator {c['op']!r} (one of {', '.join(allowed)})")


def _select(ctx: Any, args: dict[str, Any]) -> Any:
    """The query of a table view: index range, filters and order."""
    table = args["table"]
    db = ctx.db.system if table in SYSTEM_TABLES else ctx.db
    query = db.query(table)
    ranges = args.get("range") or []
    _check_ops(ranges, RANGE_OPS, "Index range")
    index = args.get("index")
    if index:

        def build(q: Any) -> Any:
            for c in ranges:
                q = getattr(q, c["op"])(c["field"], c["value"])
            return q

        query = query.with_index(index, build)
    elif ranges:
        raise ConvexError("An index range needs an index")
    filters = args.get("filters") or []
    _check_ops(filters, FILTER_OPS, "Filter")
    if filters:

        def where(q: Any) -> Any:
            terms = [getattr(q, c["op"])(q.field(c["field"]), c["value"]) for c in filters]
            return terms[0] if len(terms) == 1 else q.and_(*terms)

        query = query.filter(where)
    return query.order(args.get("order") or "desc")


def _overgrown(page: dict[str, Any], opts: Any) -> bool:
    """A page far past the size asked for (only when the caller set no end cursor)."""
    if not isinstance(opts, dict) or opts.get("endCursor") is not None:
        return False
    num = opts.get("numItems")
    too_many = isinstance(num, int | float) and len(page["page"]) > 2 * num
    return too_many or page.get("pageStatus") == "SplitRequired"


def dashboard_functions(engine: Engine) -> dict[str, RegisteredFunction]:
    """Every dashboard system function of `engine`, by path."""

    @internal_query(args={**_selection, "paginationOpts": v.any()})
    async def page(ctx: Any, args: dict[str, Any]) -> Any:
        """One page of a table (live): index range, field filters, order; `idPaths` names
        where the documents hold ids (the view links them; see `idpaths`)."""
        opts = args["paginationOpts"]
        result: dict[str, Any] = await _select(ctx, args).paginate(opts)
        if _overgrown(result, opts):
            # A live page keeps its end (the query journal) and grows as documents
            # arrive inside it. A second paginate in the same run ignores the journal:
            # a fresh page of numItems, whose end becomes the journal from now on.
            result = await _select(ctx, args).paginate(opts)
        return {**result, "idPaths": id_paths(args["table"], result["page"])}

    def id_paths(table: str, docs: list[dict[str, Any]]) -> dict[str, str]:
        """Where the documents hold ids: by the schema, else by the values on the page."""
        definition = engine.catalog.schema
        tdef = definition.tables.get(table) if definition is not None else None
        if tdef is not None and tdef.validator is not None and tdef.validator.kind != "any":
            return idpaths.from_validator(tdef.validator)
        return idpaths.from_documents(docs, engine.catalog.table_of_id)

    @internal_query(args={"table": v.string()})
    async def table(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        """What the data view sorts and links by: the table's top-level fields and its
        indexes (each sorts by its fields, in order), from the schema."""
        definition = engine.catalog.schema
        tdef = definition.tables.get(args["table"]) if definition is not None else None
        if tdef is None:
            return {"fields": [], "indexes": [], "schema": False}
        return {
            "fields": idpaths.top_level_fields(tdef.validator),
            "indexes": [{"name": n, "fields": list(f)} for n, f in tdef.indexes.items()],
            "schema": tdef.validator is not None and tdef.validator.kind != "any",
        }

    @internal_query(args={"id": v.string()})
    async def document(ctx: Any, args: dict[str, Any]) -> Any:
        """A document by id (app or system table), or null."""
        table = engine.catalog.table_of_id(args["id"])
        if table is None:
            return None
        db = ctx.db.system if table in SYSTEM_TABLES else ctx.db
        doc = await db.get(args["id"])
        if doc is None:
            return None
        return {"table": table, "document": doc, "idPaths": id_paths(table, [doc])}

    @internal_mutation(args={"table": v.string(), "document": v.any()})
    async def insert(ctx: Any, args: dict[str, Any]) -> Any:
        """Insert a document (checked against the schema)."""
        if args["table"] in SYSTEM_TABLES:
            raise ConvexError("System tables are written by Convect only")
        if not isinstance(args["document"], dict):
            raise ConvexError("A document is a JSON object")
        try:
            return await ctx.db.insert(args["table"], args["document"])
        except DocumentError as exc:  # the reason reaches the editor, in prod too
            raise ConvexError(str(exc)) from exc

    @internal_mutation(args={"id": v.string(), "document": v.any()})
    async def replace(ctx: Any, args: dict[str, Any]) -> None:
        """Replace a document's fields (checked against the schema)."""
        if not isinstance(args["document"], dict):
            raise ConvexError("A document is a JSON object")
        fields = {k: x for k, x in args["document"].items() if k not in ("_id", "_creationTime")}
        try:
            await ctx.db.replace(args["id"], fields)
        except DocumentError as exc:
            raise ConvexError(str(exc)) from exc

    @internal_mutation(args={"ids": v.array(v.string())})
    async def remove(ctx: Any, args: dict[str, Any]) -> int:
        """Delete documents by id; how many."""
        for doc_id in args["ids"]:
            await ctx.db.delete(doc_id)
        return len(args["ids"])

    @internal_mutation(args=_selection)
    async def remove_matching(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        """Delete up to a batch of the documents a table view selects; call until `done`."""
        if args["table"] in SYSTEM_TABLES:
            raise ConvexError("System tables are written by Convect only")
        docs = await _select(ctx, args).take(BULK_DELETE_BATCH)
        for doc in docs:
            await ctx.db.delete(doc["_id"])
        return {"deleted": len(docs), "done": len(docs) < BULK_DELETE_BATCH}

    @internal_action(args={})
    async def tables(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The app's tables with their document counts (estimates above 100,000)."""
        names = [t for t in engine.catalog.tables() if t not in SYSTEM_TABLES]
        out = []
        async with engine.connection() as conn:
            rows = await conn.fetch(
                "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'docs' AND c.relkind = 'r'"
            )
            estimate = {r["relname"]: int(r["reltuples"]) for r in rows}
            for name in names:
                guess = estimate.get(name, -1)
                if 0 <= guess <= EXACT_COUNT_UP_TO or guess < 0:
                    count = await conn.fetchval(f"SELECT count(*) FROM {table_ref(name)}")
                    out.append({"name": name, "count": count, "estimated": False})
                else:
                    out.append({"name": name, "count": guess, "estimated": True})
        return out

    @internal_action(args={})
    async def functions(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Every function of the app: path, kind, visibility, args and returns JSON Schema (as text)."""
        out = []
        for path, fn in sorted(engine.registry.functions.items()):
            if fn.kind == "httpAction":
                continue
            out.append(
                {
                    "path": path,
                    "module": path.split(":")[0],
                    "kind": fn.kind,
                    "visibility": fn.visibility,
                    "doc": fn.doc or "",
                    # JSON text: a schema's keys ("$integer") are not Convex field names
                    "args": json.dumps(args_schema(fn.args)),
                    "returns": json.dumps(returns_schema(fn.returns)),
                }
            )
        return out

    @internal_action(args={})
    async def schema(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        """Tables and their indexes, search and vector indexes, each with its build state
        (a staged one's: backfilling, backfilled or failed, with the error); the last few
        deploys and what each changed."""
        async with engine.connection() as conn:
            history = await deploys.recent(conn, RECENT_DEPLOYS)
            rows = await conn.fetch(
                "SELECT c.relname AS name, i.indisvalid AND i.indisready AS ready "
                "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'docs'"
            )
            staged_builds = {b.name: b for b in await index_builds.states(conn)}
        built = {r["name"]: bool(r["ready"]) for r in rows}
        definition = engine.catalog.schema
        out = []
        for table in engine.catalog.tables():
            tdef = definition.tables.get(table) if definition is not None else None

            def state(name: str, tdef: Any = tdef, table: str = table) -> dict[str, Any]:
                """Built or not; a staged index's background build state and error."""
                sql_name = f"{table}__{name}"
                if name not in tdef.staged:
                    ready = built.get(sql_name, True)
                    return {"state": "ready" if ready else "backfilling", "staged": False}
                b = staged_builds.get(sql_name)
                found = b.state if b is not None else "backfilling"
                return {"state": found, "staged": True, "error": b.error if b else None}

            indexes = [
                {"name": name, "fields": list(fields), **state(name)}
                for name, fields in (tdef.indexes if tdef else {}).items()
            ]
            search = [
                {
                    "name": n,
                    "searchField": s.search_field,
                    "filterFields": list(s.filter_fields),
                    **state(n),
                }
                for n, s in (tdef.search_indexes if tdef else {}).items()
            ]
            vector = [
                {
                    "name": n,
                    "vectorField": x.vector_field,
                    "dimensions": x.dimensions,
                    "filterFields": list(x.filter_fields),
                    **state(n),
                }
                for n, x in (tdef.vector_indexes if tdef else {}).items()
            ]
            out.append(
                {
                    "table": table,
                    "validated": tdef is not None
                    and tdef.validator is not None
                    and tdef.validator.kind != "any",
                    "indexes": indexes,
                    "searchIndexes": search,
                    "vectorIndexes": vector,
                }
            )
        return {"tables": out, "schemaDefined": definition is not None, "deploys": history}

    @internal_query(args={"state": v.optional(v.string())})
    async def scheduled(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The latest 200 scheduled functions (optionally of one state), newest first."""
        query = ctx.db.system.query("_scheduled_functions").order("desc")
        state = args.get("state")
        if state:
            query = query.filter(lambda q: q.eq(q.field("state.kind"), state))
        docs: list[dict[str, Any]] = await query.take(200)
        return docs

    @internal_mutation(args={"id": v.string()})
    async def cancel(ctx: Any, args: dict[str, Any]) -> None:
        """Cancel a pending or running scheduled function."""
        await ctx.scheduler.cancel(args["id"])

    @internal_query(args={})
    async def crons(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The app's cron jobs: schedule, function, last run, next run."""
        jobs = getattr(engine.registry.crons, "jobs", {})
        now = time.time()
        out = []
        for job in jobs.values():
            path = ref_path(job.ref)
            if job.cron is not None:
                start = datetime.fromtimestamp(now, UTC)
                next_ms = croniter(job.cron, start).get_next(datetime).timestamp() * 1000
                schedule = job.cron
            else:
                interval = float(job.interval_s or 0)
                next_ms = (now // interval + 1) * interval * 1000 if interval else None
                schedule = f"every {interval:g}s"
            last = (
                await ctx.db.system.query("_scheduled_functions")
                .order("desc")
                .filter(lambda q, p=path: q.eq(q.field("name"), p))
                .first()
            )
            out.append(
                {
                    "name": job.name,
                    "schedule": schedule,
                    "function": path,
                    "args": job.args,
                    "lastRun": last,
                    "nextRun": next_ms,
                }
            )
        return out

    @internal_query(args={})
    async def files(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The latest 200 stored files with size, type and a download URL."""
        docs = await ctx.db.system.query("_storage").order("desc").take(200)
        out = []
        for doc in docs:
            out.append({**doc, "url": await ctx.storage.get_url(doc["_id"])})
        return out

    @internal_mutation(args={})
    async def upload_url(ctx: Any, args: dict[str, Any]) -> str:
        """A URL to POST a file to."""
        url: str = await ctx.storage.generate_upload_url()
        return url

    @internal_mutation(args={"id": v.string()})
    async def delete_file(ctx: Any, args: dict[str, Any]) -> None:
        """Delete a stored file."""
        await ctx.storage.delete(args["id"])

    found = {
        name: value for name, value in locals().items() if isinstance(value, RegisteredFunction)
    }
    for name, fn in found.items():
        fn.path = f"{SYSTEM_MODULE}:{name}"
    return {fn.path: fn for fn in found.values() if fn.path is not None}
