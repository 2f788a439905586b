"""Convex's admin HTTP surface: environment variables and the function log stream.

What the npm `convex` CLI and its MCP server call besides the `_system/cli/...`
functions (`app/admin`); every route needs the admin key (`Authorization: Convex <key>`).
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from app.admin import convex_validator
from app.admin.snapshots import SnapshotError, Snapshots
from app.auth import AuthenticationError
from app.engine import Engine
from app.envvars import EnvVarError, EnvVars, parse_changes
from app.http.api import BadRequest, read_json
from app.http.responses import JSONResponse, error_response
from app.logstream import FunctionLogs

LOG_POLL_S = 10.0  # a log poll with nothing new waits this long for a call to finish


async def admin_refusal(engine: Engine, request: Request) -> Response | None:
    """None when the request carries the admin key, else the error response to send."""
    try:
        principal = await engine.principal(request.headers.get("authorization"))
    except AuthenticationError as exc:
        return error_response(403, "BadAdminKey", f"{exc}")
    if not principal.is_admin:
        return error_response(
            401, "MissingAdminKey", "This needs the admin key (`Authorization: Convex <key>`)"
        )
    return None


def admin_routes(engine: Engine) -> list[Any]:
    """`/api/update_environment_variables`, `/api/stream_function_logs` (where this
    process has the parts they serve), imports and exports, and a clear refusal of
    Convex's code push (`npx convex deploy`/`dev`)."""
    routes: list[Any] = _snapshot_routes(engine, Snapshots(engine))
    refuse = _push_refusal(engine)
    routes += [
        Route(path, refuse, methods=["POST", "GET"])
        for path in (
            "/api/deploy2/{step:path}",
            "/api/push_config",
            "/api/get_config_hashes",
            "/api/prepare_schema",
            "/api/run_test_function",
            "/api/v1/{rest:path}",
        )
    ]
    env = engine.env
    if isinstance(env, EnvVars):
        routes.append(
            Route("/api/update_environment_variables", _env_endpoint(engine, env), methods=["POST"])
        )
    logs = engine.log_stream
    if isinstance(logs, FunctionLogs):
        routes.append(
            Route("/api/stream_function_logs", _logs_endpoint(engine, logs), methods=["GET"])
        )
    return routes


def _env_endpoint(engine: Engine, env: EnvVars) -> Any:
    async def update(request: Request) -> Response:
        refusal = await admin_refusal(engine, request)
        if refusal is not None:
            return refusal
        try:
            changes = parse_changes(await read_json(request))
            await env.update(changes)
        except BadRequest as exc:
            return error_response(exc.status, exc.code, exc.message)
        except EnvVarError as exc:
            return error_response(400, "InvalidEnvironmentVariables", str(exc))
        return JSONResponse({})

    return update


def _logs_endpoint(engine: Engine, logs: FunctionLogs) -> Any:
    async def stream(request: Request) -> Response:
        refusal = await admin_refusal(engine, request)
        if refusal is not None:
            return refusal
        raw = request.query_params.get("cursor", "0")
        try:
            cursor = float(raw)
        except ValueError:
            cursor = math.nan
        if not math.isfinite(cursor) or cursor < 0:
            return error_response(
                400, "InvalidCursor", f"cursor must be a number of ms, not {raw!r}"
            )
        wait = 0.0 if engine.draining else LOG_POLL_S
        entries = await logs.wait_since(cursor, wait)
        new_cursor = entries[-1].cursor if entries else max(cursor, logs.head())
        return JSONResponse(
            {"entries": [entry.to_convex() for entry in entries], "newCursor": new_cursor}
        )

    return stream


PUSH_REFUSED = (
    "This is a Convect deployment: it runs Python functions from its functions folder, "
    "not TypeScript pushed by `npx convex deploy` or `npx convex dev`. Deploy with "
    "`convect deploy` (schema and migrations) and serve with `convect serve`, or develop "
    "with `convect dev`. `npx convex data | run | logs | env | import | export` work here."
)


def _push_refusal(engine: Engine) -> Any:
    async def refuse(request: Request) -> Response:
        refusal = await admin_refusal(engine, request)
        if refusal is not None:
            return refusal
        return error_response(400, "ConvectDoesNotTakePushes", PUSH_REFUSED)

    return refuse


def _snapshot_routes(engine: Engine, snapshots: Snapshots) -> list[Any]:
    """`npx convex import` (start_upload, upload_part, finish_upload, perform_import) and
    `npx convex export` (request/zip, zip/<ts>)."""

    def admin(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            refusal = await admin_refusal(engine, request)
            if refusal is not None:
                return refusal
            try:
                return await handler(request)  # type: ignore[no-any-return]
            except SnapshotError as exc:
                return error_response(400, exc.code, str(exc))
            except BadRequest as exc:
                return error_response(exc.status, exc.code, exc.message)

        return endpoint

    async def start_upload(request: Request) -> Response:
        return JSONResponse({"uploadToken": snapshots.start_upload()})

    async def upload_part(request: Request) -> Response:
        token = request.query_params.get("uploadToken", "")
        part = request.query_params.get("partNumber", "")
        if not token or not part.isdigit():
            raise SnapshotError("InvalidUpload", "uploadToken and partNumber are required")
        limit = engine.settings.max_upload_bytes
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise SnapshotError("ImportTooLarge", f"A part exceeds {limit} bytes")
        await snapshots.upload_part(token, int(part), bytes(body))
        return JSONResponse(part)

    async def finish_upload(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("uploadToken"), str):
            raise SnapshotError("InvalidUpload", "uploadToken is required")
        import_id = await snapshots.finish_upload(body["uploadToken"], body.get("import"))
        return JSONResponse({"importId": import_id})

    async def perform_import(request: Request) -> Response:
        return JSONResponse({})  # imports run when their upload finishes

    async def request_export(request: Request) -> Response:
        include = request.query_params.get("includeStorage", "false").lower() == "true"
        await snapshots.request_export(include)
        return JSONResponse({})

    async def download(request: Request) -> Response:
        ts = request.path_params["ts"]
        path = snapshots.export_path(ts)
        if path is None:
            return error_response(
                404, "ExportNotFound",
                f"No export {ts} on this server (exports stay with the API process that "
                "wrote them)",
            )  # fmt: skip
        disposition = {"Content-Disposition": f"attachment; filename={path.name}"}
        return FileResponse(path, media_type="application/zip", headers=disposition)

    async def shapes(request: Request) -> Response:
        """Each table's shape, as the MCP server's `tables` tool reads it (Convect infers
        none: a table's declared document type, else `Unknown`)."""
        await engine.catalog.load()
        schema = engine.registry.schema
        out: dict[str, Any] = {}
        for name in engine.catalog.tables():
            if name.startswith("_"):
                continue
            table = schema.tables.get(name) if schema is not None else None
            out[name] = (
                convex_validator(table.validator)
                if table is not None and table.validator is not None
                else {"type": "Unknown"}
            )
        return JSONResponse(out)

    return [
        Route("/api/import/start_upload", admin(start_upload), methods=["POST"]),
        Route("/api/import/upload_part", admin(upload_part), methods=["POST"]),
        Route("/api/import/finish_upload", admin(finish_upload), methods=["POST"]),
        Route("/api/perform_import", admin(perform_import), methods=["POST"]),
        Route("/api/export/request/zip", admin(request_export), methods=["POST"]),
        Route("/api/export/zip/{ts}", admin(download), methods=["GET"]),
        Route("/api/shapes2", admin(shapes), methods=["GET"]),
    ]


__all__ = ["PUSH_REFUSED", "admin_refusal", "admin_routes"]
