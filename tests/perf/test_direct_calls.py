"""The direct path to the call endpoints behaves like FastAPI's middleware path."""

from __future__ import annotations

import httpx
import pytest
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.http.direct import DirectCallApp
from app.http.responses import JSONResponse, error_response


def _app() -> tuple[DirectCallApp, list[str]]:
    seen: list[str] = []

    async def ok(request: Request) -> Response:
        seen.append("ok")
        return JSONResponse({"echo": (await request.body()).decode()})

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    app = DirectCallApp(docs_url=None, redoc_url=None, openapi_url=None)
    app.direct_routes.update({"/api/ok": ok, "/api/boom": boom})
    app.router.routes[:0] = [
        Route("/api/ok", ok, methods=["POST"]),
        Route("/api/boom", boom, methods=["POST"]),
    ]

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error_response(405, "MethodNotAllowed", "nope")

    @app.exception_handler(500)
    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "InternalServerError", "Internal server error")

    return app, seen


async def test_a_direct_route_answers_like_the_routed_one() -> None:
    app, seen = _app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        r = await c.post("/api/ok", content=b"hi")
    assert r.status_code == 200 and r.json() == {"echo": "hi"} and seen == ["ok"]


async def test_an_endpoint_error_is_the_app_500_and_still_raised() -> None:
    app, _ = _app()
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/api/boom")
    assert r.status_code == 500
    assert r.json() == {"code": "InternalServerError", "message": "Internal server error"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        with pytest.raises(RuntimeError, match="boom"):
            await c.post("/api/boom")


async def test_other_methods_and_paths_take_the_normal_route() -> None:
    app, seen = _app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        wrong_method = await c.get("/api/ok")
        unknown = await c.post("/api/other")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "MethodNotAllowed"
    assert unknown.status_code == 404 and seen == []


async def test_user_middleware_turns_the_direct_path_off() -> None:
    app, seen = _app()

    async def tag(request: Request, call_next: object) -> Response:
        response: Response = await call_next(request)  # type: ignore[operator]
        response.headers["x-middleware"] = "ran"
        return response

    app.add_middleware(BaseHTTPMiddleware, dispatch=tag)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        r = await c.post("/api/ok", content=b"x")
    assert r.headers.get("x-middleware") == "ran" and seen == ["ok"]
