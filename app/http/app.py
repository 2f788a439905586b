"""`create_app`: the API listener's Starlette/FastAPI application."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.engine import Engine
from app.http import api, health
from app.http.admin import admin_routes
from app.http.dashboard import dashboard_routes
from app.http.direct import DirectCallApp
from app.http.responses import error_response
from app.http.rest import install_rest
from app.http.storage import storage_routes
from app.http.sync import sync_routes
from app.storage import StorageService


def create_app(engine: Engine) -> FastAPI:
    """The API listener: Convex HTTP API, REST, sync, storage, health and metrics."""
    app = DirectCallApp(
        title="Convect",
        description="Functions of this Convect deployment.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    calls = {
        "/api/query": api.make_call_endpoint(engine, "query"),
        "/api/mutation": api.make_call_endpoint(engine, "mutation"),
        "/api/action": api.make_call_endpoint(engine, "action"),
        "/api/function": api.make_call_endpoint(engine, None),
        "/api/query_at_ts": api.make_query_at_ts_endpoint(engine),
    }
    app.direct_routes.update(calls)  # served without the middleware stack (app/http/direct.py)
    routes: list[Any] = [Route(path, call, methods=["POST"]) for path, call in calls.items()]
    routes += [
        Route("/api/query_ts", api.make_query_ts_endpoint(engine), methods=["POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.make_readyz(engine), methods=["GET"]),
        Route("/metrics", health.make_metrics(engine), methods=["GET"]),
        *dashboard_routes(),  # the browser app; its data needs the admin key
    ]
    if engine.hub is not None:  # live queries: the sync protocol's socket
        routes += sync_routes(engine, engine.hub)
    routes += admin_routes(engine)  # environment variables, function logs (admin key)
    if isinstance(engine.storage, StorageService):  # upload URLs and file downloads
        routes += storage_routes(engine.storage)
    app.router.routes[:0] = routes
    app.rest = install_rest(app, engine)  # POST /api/run/{module}/{name}, /openapi.json, /docs

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, "NotFound", f"No route for {request.method} {request.url.path}")

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Exception) -> Response:
        response = error_response(405, "MethodNotAllowed", f"{request.method} is not allowed here")
        allow = (getattr(exc, "headers", None) or {}).get("Allow")
        if allow:
            response.headers["Allow"] = allow  # RFC 9110: a 405 lists the allowed methods
        return response

    @app.exception_handler(500)
    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "InternalServerError", "Internal server error")

    return app
