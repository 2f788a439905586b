"""The sync routes of the API listener: the WebSocket and its debug statistics."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from app.auth import AuthenticationError
from app.engine import Engine
from app.engine.parts import LiveQueries
from app.http.responses import JSONResponse, error_response
from app.sync.hub import Hub
from app.sync.socket import serve_socket


def sync_routes(engine: Engine, hub: LiveQueries) -> list[Any]:
    """`/api/sync` (and `/api/<version>/sync`), and `GET /api/debug/sync_stats` (admin)."""
    if not isinstance(hub, Hub):
        raise TypeError("The sync routes need the live-query hub of app.sync")
    live: Hub = hub

    async def endpoint(ws: WebSocket) -> None:
        await serve_socket(engine, live, ws)

    async def stats(request: Request) -> Response:
        try:
            principal = await engine.principal(request.headers.get("authorization"))
        except AuthenticationError as exc:
            return error_response(401, "Unauthenticated", str(exc))
        if not principal.is_admin:
            return error_response(403, "Forbidden", "The admin key is required")
        return JSONResponse(asdict(live.snapshot()))

    return [
        WebSocketRoute("/api/sync", endpoint),
        WebSocketRoute("/api/{version}/sync", endpoint),
        Route("/api/debug/sync_stats", stats, methods=["GET"]),
    ]
