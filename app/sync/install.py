"""Attach live queries (hub, notifier, sync routes, HTTP query cache) to an engine."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from app.auth import AuthenticationError
from app.engine import Engine
from app.http.responses import JSONResponse, error_response
from app.sync.hub import Hub
from app.sync.notifier import Notifier
from app.sync.socket import serve_socket


def install(engine: Engine, *, live: bool) -> None:
    """Every role notifies after commits; API roles (`live`) also run the hub and sockets."""
    hub = Hub(engine) if live else None
    notifier = Notifier(engine, hub)
    engine.services["notifier"] = notifier
    if hub is not None:
        engine.services["hub"] = hub
        engine.on_commit.append(hub.local_commit)

        def routes(engine: Engine) -> list[Any]:
            async def endpoint(ws: WebSocket) -> None:
                await serve_socket(engine, hub, ws)

            async def stats(request: Request) -> Response:
                try:
                    principal = await engine.principal(request.headers.get("authorization"))
                except AuthenticationError as exc:
                    return error_response(401, "Unauthenticated", str(exc))
                if not principal.is_admin:
                    return error_response(403, "Forbidden", "The admin key is required")
                return JSONResponse(
                    {
                        **asdict(hub.stats),
                        "entries": len(hub.entries),
                        "sessions": len(hub.sessions),
                        "pending": len(hub.pending),
                        "queued_bytes": sum(s.queued_bytes for s in hub.sessions),
                        "ts": hub.ts,
                    }
                )

            return [
                WebSocketRoute("/api/sync", endpoint),
                WebSocketRoute("/api/{version}/sync", endpoint),
                Route("/api/debug/sync_stats", stats, methods=["GET"]),
            ]

        engine.services.setdefault("api_routes", []).append(routes)

        async def start_hub(engine: Engine) -> None:
            await hub.start()

        async def stop_hub(engine: Engine) -> None:
            for session in list(hub.sessions):
                session.close(1001, "ServerShuttingDown")
            await hub.stop()

        engine.on_start.append(start_hub)
        engine.on_stop.append(stop_hub)

        async def reload_hub(engine: Engine) -> None:
            # New code (dev reload): forget cached results the old code computed, and re-run
            # every subscription so sockets get the new results without reconnecting.
            for entry in list(hub.entries.values()):
                if entry.sessions:
                    entry.dirty = True
                else:
                    hub._drop(entry)
            hub.scan_gen += 1  # an HTTP query still running the old code is not cached
            hub.request_refresh(rerun_all=True)

        engine.on_reload.append(reload_hub)

        async def drain() -> None:
            await asyncio.gather(*(session.drain() for session in list(hub.sessions)))

        engine.services.setdefault("drain", []).append(drain)

    async def start_notifier(engine: Engine) -> None:
        await notifier.start()

    async def stop_notifier(engine: Engine) -> None:
        await notifier.stop()

    engine.on_start.append(start_notifier)
    engine.on_stop.append(stop_notifier)
