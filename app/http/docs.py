"""`/openapi.json` and `/docs`: Swagger UI served from this process (no CDN, works offline).

The UI's assets come from the PyPI package `swagger-ui-bundle-v2` (Swagger UI 5, which
reads OpenAPI 3.1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from app.http.responses import JSONResponse, error_response

__all__ = ["DOCS_PATH", "OPENAPI_PATH", "docs_routes"]

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
_ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def _assets_folder() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(str(swagger_ui_bundle.swagger_ui_path))


def docs_routes(get_spec: Callable[[], dict[str, Any]], title: str = "Convect") -> list[Route]:
    """`/openapi.json`, `/docs` (Swagger UI) and the UI's assets, served from this process."""
    from fastapi.openapi.docs import get_swagger_ui_html

    folder = _assets_folder()

    async def openapi(request: Request) -> Response:
        return JSONResponse(get_spec())

    async def docs(request: Request) -> Response:
        if folder is None:
            return error_response(404, "DocsUnavailable", "Install swagger-ui-bundle-v2 for /docs")
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{OPENAPI_PATH}",
            title=f"{title} API",
            swagger_js_url=f"{root}{DOCS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_PATH}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": True},
        )

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if folder is None or name not in _ASSETS:
            return error_response(404, "NotFound", f"No route for GET {request.url.path}")
        return FileResponse(
            folder / name,
            media_type=_ASSETS[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return [
        Route(OPENAPI_PATH, openapi, methods=["GET"]),
        Route(DOCS_PATH, docs, methods=["GET"]),
        Route(DOCS_PATH + "/{name}", asset, methods=["GET"]),
    ]
