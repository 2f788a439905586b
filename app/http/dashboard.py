"""The dashboard's browser assets at `/dashboard` (its data comes from admin-only functions)."""

from __future__ import annotations

import mimetypes
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from app.dashboard import asset_path
from app.http.responses import error_response

# Everything the page loads comes from this listener: no CDN, no inline script.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
)


async def _asset(request: Request) -> Response:
    name = request.path_params.get("name") or "index.html"
    path = asset_path(name)
    if path is None:
        if "." not in name.rsplit("/", 1)[-1]:  # a client-side route: the page itself
            path = asset_path("index.html")
        if path is None:
            return error_response(404, "NotFound", f"No dashboard asset {name}")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".js":
        media_type = "text/javascript"
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


async def _redirect(request: Request) -> Response:
    return RedirectResponse("/dashboard/", status_code=308)


def dashboard_routes() -> list[Any]:
    """`/dashboard` and its assets."""
    return [
        Route("/dashboard", _redirect, methods=["GET"]),
        Route("/dashboard/", _asset, methods=["GET", "HEAD"]),
        Route("/dashboard/{name:path}", _asset, methods=["GET", "HEAD"]),
    ]
