"""The site listener: the app's HTTP actions (`functions/http.py`)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.auth import AuthenticationError, Principal
from app.engine import Engine, Outcome
from app.http.limits import BodyTooLarge, BoundedRequest
from app.http.responses import JSONResponse, error_response
from app.storage.errors import StorageError

log = logging.getLogger("convect.site")
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


def _cors_headers(cors: Any, request: Request) -> dict[str, str]:
    if not cors:
        return {}
    options = cors if isinstance(cors, dict) else {}
    origins = options.get("allowed_origins", ["*"])
    origin = request.headers.get("origin", "")
    allow = "*" if "*" in origins else (origin if origin in origins else "")
    if not allow:
        return {}
    return {
        "Access-Control-Allow-Origin": allow,
        "Access-Control-Allow-Methods": ", ".join(options.get("allowed_methods", ALL_METHODS)),
        "Access-Control-Allow-Headers": ", ".join(
            options.get("allowed_headers", ["Content-Type", "Authorization"])
        ),
        "Vary": "Origin",
    }


async def _principal(engine: Engine, header: str | None) -> Principal:
    """The caller of an HTTP action (raises AuthenticationError for a rejected header).

    `Bearer <token>` and `Convex <admin key>[:identity]` are checked as on the API
    listener, so a bad token is refused rather than run anonymously. Any other scheme
    (Basic, a webhook's own) is left to the handler, which reads the header itself.
    """
    scheme = (header or "").strip().partition(" ")[0].lower()
    if scheme not in ("bearer", "convex"):
        return Principal()
    return await engine.principal(header)


def action_response(outcome: Outcome, cors: dict[str, str], *, dev: bool) -> Response:
    """An HTTP action's outcome as its response: the handler's own, or an error."""
    failure = outcome.error
    rid = outcome.request_id
    if failure is None:
        if isinstance(outcome.value, Response):
            return outcome.value
        log.error("HTTP action returned %r, not a Response [request %s]", type(outcome.value), rid)
        return PlainTextResponse(f"Server Error [Request ID: {rid}]", status_code=500, headers=cors)
    exc = failure.exception
    if isinstance(exc, StorageError):
        return JSONResponse(
            {"code": exc.code, "message": str(exc)}, status_code=exc.status, headers=cors
        )
    if isinstance(exc, BodyTooLarge):
        return JSONResponse(
            {"code": "BodyTooLarge", "message": str(exc)}, status_code=413, headers=cors
        )
    detail = f": {type(exc).__name__}: {exc}" if dev and exc is not None else ""
    return PlainTextResponse(
        f"Server Error [Request ID: {rid}]{detail}", status_code=500, headers=cors
    )


def create_site_app(engine: Engine) -> Starlette:
    """An ASGI app that routes every request to the app's HttpRouter."""

    async def dispatch(request: Request) -> Response:
        router = engine.registry.http
        if router is None:
            return PlainTextResponse(
                "No HTTP actions are defined (functions/http.py)", status_code=404
            )
        cors = _cors_headers(getattr(router, "cors", False), request)
        route, path_known = router.lookup(request.method, request.url.path)
        if route is None:
            if request.method == "OPTIONS" and cors:
                return Response(status_code=204, headers=cors)
            if not path_known:
                return PlainTextResponse("Not Found", status_code=404, headers=cors)
            allow = ", ".join(router.methods_for(request.url.path))
            return PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={**cors, "Allow": allow}
            )
        try:
            principal = await _principal(engine, request.headers.get("authorization"))
        except AuthenticationError as exc:
            rejected = error_response(401, "Unauthenticated", str(exc))
            rejected.headers.update(cors)
            return rejected
        bounded = BoundedRequest(request.scope, request.receive)
        outcome = await engine.execute(route.function, bounded, principal.identity)
        response = action_response(outcome, cors, dev=engine.settings.dev)
        for k, v in cors.items():
            response.headers.setdefault(k, v)
        return response

    return Starlette(routes=[Route("/{path:path}", dispatch, methods=ALL_METHODS)])
