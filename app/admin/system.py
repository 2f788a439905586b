"""The `_system/...` functions Convex's CLI and MCP server call, as admin-only queries.

They run through the engine like any query (`Engine.lookup` finds them for an admin
only), so `npx convex data`, `env`, `run` and the MCP tools reach them over the sync
socket or HTTP as they do on Convex. Paths and result shapes are Convex's
(npm-packages/system-udfs/convex/_system in get-convex/convex-backend).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from app.admin.snapshots import snapshot_document, snapshot_documents
from app.admin.spec import function_spec, schema_json
from app.db.sql import table_ref
from app.envvars.store import read_all
from app.server.functions import RegisteredFunction
from app.values import Int64, pagination_opts_validator, v

if TYPE_CHECKING:
    from app.engine import Engine

MODULE = "convect.system"


def _query(
    path: str, handler: Callable[[Any, dict[str, Any]], Awaitable[Any]], args: Any = None
) -> RegisteredFunction:
    return RegisteredFunction(
        kind="query",
        visibility="internal",
        handler=handler,
        args=v.object(args) if isinstance(args, dict) else args,
        returns=None,
        name=path.rsplit(":", 1)[1],
        module=MODULE,
        path=path,
        doc=handler.__doc__,
    )


def system_functions(engine: Engine) -> dict[str, RegisteredFunction]:
    """Every `_system/...` function, by canonical path."""

    async def tables(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        """The app's tables (not the system ones), as one page."""
        await engine.catalog.load()
        names = [name for name in engine.catalog.tables() if not name.startswith("_")]
        return {"page": [{"name": name} for name in names], "isDone": True, "continueCursor": "end"}

    async def table_data(ctx: Any, args: dict[str, Any]) -> Any:
        """A page of a table's documents by creation time."""
        table = args["table"]
        if not engine.catalog.exists(table):
            await engine.catalog.load()
        if not engine.catalog.exists(table):
            return {"page": [], "isDone": True, "continueCursor": "end"}
        db = ctx.db.system if table.startswith("_") else ctx.db
        return await db.query(table).order(args["order"]).paginate(args["paginationOpts"])

    async def table_size(ctx: Any, args: dict[str, Any]) -> float:
        """How many documents a table holds."""
        table = args["tableName"]
        if not engine.catalog.exists(table):
            await engine.catalog.load()
        if not engine.catalog.exists(table):
            return 0.0
        return float(await engine.pool.fetchval(f"SELECT count(*) FROM {table_ref(table)}"))

    async def env_list(ctx: Any, args: dict[str, Any]) -> list[dict[str, str]]:
        """The deployment's environment variables, by name."""
        stored = await read_all(engine.pool)
        return [{"name": name, "value": value} for name, value in stored.items()]

    async def env_get(ctx: Any, args: dict[str, Any]) -> dict[str, str] | None:
        """One deployment environment variable, or null."""
        stored = await read_all(engine.pool)
        name = args["name"]
        return {"name": name, "value": stored[name]} if name in stored else None

    async def api_spec(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Every function with its kind, visibility and validators."""
        return function_spec(engine.registry)

    async def cloud_url(ctx: Any, args: dict[str, Any]) -> str:
        """The deployment's URL."""
        return engine.settings.base_url

    async def get_schemas(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        """The active schema as Convex's JSON text (none without `schema.py`)."""
        schema = schema_json(engine.registry.schema)
        return {} if schema is None else {"active": orjson.dumps(schema).decode()}

    async def query_import(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
        """One import and its state (`npx convex import` waits on it)."""
        found = await snapshot_document(engine, args["importId"])
        return found if found is not None and "state" in found else None

    async def list_imports(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The newest imports."""
        return await snapshot_documents(engine, "import", 20)

    async def latest_export(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
        """The newest export (`npx convex export` downloads it)."""
        found = await snapshot_documents(engine, "export", 1)
        if not found:
            return None
        doc = found[0]
        for key in ("start_ts", "complete_ts"):
            if isinstance(doc.get(key), int):
                doc[key] = Int64(doc[key])
        return doc

    order = v.union(v.literal("asc"), v.literal("desc"))
    component = {"componentId": v.optional(v.union(v.string(), v.null()))}
    functions = [
        _query("_system/cli/tables:default", tables),
        _query(
            "_system/cli/tableData:default",
            table_data,
            {"table": v.string(), "order": order, "paginationOpts": pagination_opts_validator},
        ),
        _query("_system/cli/tableSize:default", table_size, {"tableName": v.string()}),
        _query("_system/cli/queryEnvironmentVariables:default", env_list, {}),
        _query("_system/cli/queryEnvironmentVariables:get", env_get, {"name": v.string()}),
        _query("_system/cli/modules:apiSpec", api_spec, component),
        _query("_system/cli/convexUrl:cloudUrl", cloud_url, {}),
        _query("_system/frontend/getSchemas:default", get_schemas, component),
        _query("_system/cli/queryImport:default", query_import, {"importId": v.string()}),
        _query("_system/cli/queryImport:list", list_imports, {}),
        _query("_system/cli/exports:getLatest", latest_export, {}),
    ]
    return {fn.path or "": fn for fn in functions}


__all__ = ["system_functions"]
