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
from app.http.responses import JSONResponse
from app.values import encode_value

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


async def _principal(engine: Engine, header: str | None) -> Principal | AuthenticationError:
    """The caller of an HTTP action, or why its `Authorization` header was rejected.

    As in Convex the handler runs whatever the header holds: a rejected one (a bad token,
    a wrong admin key, a scheme other than `Bearer` or `Convex`) is raised only when the
    handler asks `ctx.auth.get_user_identity()`; a webhook reading its own header works.
    """
    text = (header or "").strip()
    if not text:
        return Principal()
    if len(text) < 7:
        return AuthenticationError("Invalid authentication header", "InvalidHeaderFailure")
    if text[:7].lower() not in ("bearer ", "convex "):
        return AuthenticationError("Invalid admin key", "InvalidAdminKey")
    try:
        return await engine.principal(text)
    except AuthenticationError as exc:
        return exc


def action_response(outcome: Outcome, cors: dict[str, str], *, dev: bool) -> Response:
    """An HTTP action's outcome as its response: the handler's own, or an error.

    An uncaught error answers as Convex does: 500 with JSON `{"code": "[Request ID: …]
    Server Error: Uncaught Error: …", "trace": …}` (`code` without the error and no
    `trace` in prod), plus `"data"` for a ConvexError. Storage errors are uncaught errors
    like any other; only a request body over the limit answers 413.
    """
    failure = outcome.error
    rid = outcome.request_id
    if failure is None:
        if isinstance(outcome.value, Response):
            return outcome.value
        log.error("HTTP action returned %r, not a Response [request %s]", type(outcome.value), rid)
        body: dict[str, Any] = {"code": f"[Request ID: {rid}] Server Error"}
        return JSONResponse(body, status_code=500, headers=cors)
    exc = failure.exception
    if isinstance(exc, BodyTooLarge):
        return JSONResponse(
            {"code": "BodyTooLarge", "message": str(exc)}, status_code=413, headers=cors
        )
    body = {"code": f"[Request ID: {rid}] Server Error"}
    if dev:
        body["code"] += f": {failure.cause}"
        body["trace"] = failure.trace
    if failure.is_convex_error:
        body["data"] = encode_value(failure.data)
    return JSONResponse(body, status_code=500, headers=cors)


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
        principal = await _principal(engine, request.headers.get("authorization"))
        bounded = BoundedRequest(request.scope, request.receive)
        if isinstance(principal, AuthenticationError):
            outcome = await engine.execute(route.function, bounded, None, auth_error=principal)
        else:
            outcome = await engine.execute(route.function, bounded, principal.identity)
        response = action_response(outcome, cors, dev=engine.settings.dev)
        for k, v in cors.items():
            response.headers.setdefault(k, v)
        return response

    return Starlette(routes=[Route("/{path:path}", dispatch, methods=ALL_METHODS)])
