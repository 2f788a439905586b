"""`create_app`: the API listener's Starlette/FastAPI application."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.http import api
from app.http.responses import JSONResponse, error_response
from app.server.engine import Engine


def create_app(engine: Engine) -> FastAPI:
    """The API listener: Convex HTTP API, REST, sync, storage, health and metrics."""
    app = FastAPI(
        title="Convect",
        description="Functions of this Convect deployment.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    routes: list[Any] = [
        Route("/api/query", api.make_call_endpoint(engine, "query"), methods=["POST"]),
        Route("/api/mutation", api.make_call_endpoint(engine, "mutation"), methods=["POST"]),
        Route("/api/action", api.make_call_endpoint(engine, "action"), methods=["POST"]),
        Route("/api/function", api.make_call_endpoint(engine, None), methods=["POST"]),
        Route("/api/query_at_ts", api.make_call_endpoint(engine, "query"), methods=["POST"]),
        Route("/api/query_ts", api.make_query_ts_endpoint(engine), methods=["POST"]),
        Route("/api/run/{path:path}", api.make_run_endpoint(engine), methods=["POST"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _make_readyz(engine), methods=["GET"]),
    ]
    for extend in engine.services.get("api_routes", []):
        routes.extend(extend(engine))
    app.router.routes[:0] = routes

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, "NotFound", f"No route for {request.method} {request.url.path}")

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error_response(405, "MethodNotAllowed", f"{request.method} is not allowed here")

    @app.exception_handler(500)
    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "InternalServerError", "Internal server error")

    return app


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _make_readyz(engine: Engine) -> Any:
    async def readyz(request: Request) -> Response:
        checks = await engine_ready(engine)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    return readyz


async def engine_ready(engine: Engine) -> dict[str, str]:
    """Readiness checks: database reachable, migrations current, other services."""
    from app.db.migrate import head_revision

    checks: dict[str, str] = {}
    try:
        version = await engine.pool.fetchval("SELECT version_num FROM alembic_version")
        checks["database"] = "ok"
        checks["migrations"] = "ok" if version == head_revision() else f"at {version}"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    for name, probe in engine.services.get("ready_checks", {}).items():
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    return checks
