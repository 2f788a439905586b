"""Convex's admin HTTP surface: environment variables and the function log stream.

What the npm `convex` CLI and its MCP server call besides the `_system/cli/...`
functions (`app/admin`); every route needs the admin key (`Authorization: Convex <key>`).
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
    """`/api/update_environment_variables` and `/api/stream_function_logs` where this
    process has the parts they serve."""
    routes: list[Any] = []
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


__all__ = ["admin_refusal", "admin_routes"]
