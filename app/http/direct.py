"""A direct path to the Convex call endpoints that skips FastAPI's middleware and router.

On this 2-core machine FastAPI's middleware stack and Starlette's router cost about
85 µs of CPU per request — as much as running a one-statement query (bench/README.md).
`DirectCallApp` hands `POST` requests for the paths in `direct_routes` straight to their
endpoints, with the error handling ServerErrorMiddleware gives them (the app's 500
handler answers, then the exception propagates to the server's log). Everything else,
and every request once user middleware is added, takes FastAPI's normal path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from fastapi import FastAPI
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class Refreshable(Protocol):
    """Routes that rebuild themselves when the app's functions were reloaded."""

    def refresh(self, app: FastAPI) -> None:
        """Swap in new routes if the functions changed."""


class DirectCallApp(FastAPI):
    """FastAPI whose hottest routes (`direct_routes`) are called without the middleware."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct_routes: dict[str, Endpoint] = {}
        self.rest: Refreshable | None = None  # routes rebuilt when the functions reload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a direct route, or fall through to FastAPI."""
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not self.user_middleware
            and not self.root_path
            and not scope.get("root_path")
        ):
            endpoint = self.direct_routes.get(scope["path"])
            if endpoint is not None:
                await self._direct(endpoint, scope, receive, send)
                return
        if self.rest is not None:
            self.rest.refresh(self)
        await super().__call__(scope, receive, send)

    async def _direct(self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        scope["endpoint"] = endpoint
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:  # nothing was sent yet: the app's 500 handler answers
            handler = self.exception_handlers.get(500) or self.exception_handlers.get(Exception)
            error: Any
            if handler is None:
                error = PlainTextResponse("Internal Server Error", status_code=500)
            elif is_async_callable(handler):
                error = await handler(request, exc)
            else:
                error = await run_in_threadpool(handler, request, exc)
            await error(scope, receive, send)
            raise
        await response(scope, receive, send)  # (a failure here is the client's connection)
