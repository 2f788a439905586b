"""REST per function: `POST /api/run/{module path}/{name}` for every public function.

The routes and their OpenAPI document are built from the registry when the app is
created, and rebuilt when the engine reloads the functions folder (dev mode).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.engine import Engine
from app.http.api import FORMATS, BadRequest, parse_args, read_json, run_call
from app.http.docs import docs_routes
from app.http.openapi import build_spec, public_functions, route_path
from app.http.responses import error_response
from app.server.functions import Kind

__all__ = ["RestApi", "install_rest", "parse_run_body"]

_BODY_KEYS = frozenset({"args", "format"})


def parse_run_body(body: Any) -> dict[str, Any]:
    """The decoded args of a `{"args"?: {...}, "format"?: "json"}` body (strict)."""
    if not isinstance(body, dict):
        raise BadRequest(400, "BadJsonBody", "Request body must be a JSON object")
    unknown = sorted(str(k) for k in body if k not in _BODY_KEYS)
    if unknown:
        raise BadRequest(
            400,
            "BadJsonBody",
            f"Unknown field(s) {', '.join(unknown)} in the body; expected `args` and `format`",
        )
    fmt = body.get("format", "json")
    if fmt not in FORMATS:
        raise BadRequest(
            400, "BadJsonBody", f"Unsupported format {fmt!r}; use one of {', '.join(FORMATS)}"
        )
    raw = body.get("args", {})
    if not isinstance(raw, dict):
        raise BadRequest(
            400, "InvalidArgs", f"`args` must be a JSON object, got {type(raw).__name__}"
        )
    return parse_args(raw)


def _endpoint(engine: Engine, fn_path: str, kind: Kind) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            args = parse_run_body(await read_json(request, empty={}))
        except BadRequest as exc:
            return error_response(exc.status, exc.code, exc.message)
        return await run_call(engine, request, fn_path, args, kind)

    endpoint.__name__ = f"run_{fn_path}"
    return endpoint


class RestApi:
    """The per-function routes of an engine's registry and their OpenAPI document."""

    def __init__(self, engine: Engine, title: str = "Convect") -> None:
        self.engine = engine
        self.title = title
        self.routes: list[Route] = []
        self.spec: dict[str, Any] = {}
        self.registry = engine.registry
        self.build()

    def build(self) -> None:
        """(Re)build the routes and the spec from the engine's current registry."""
        registry = self.engine.registry
        routes = [
            Route(
                route_path(fn.path or ""),
                _endpoint(self.engine, fn.path or "", fn.kind),
                methods=["POST"],
                name=fn.path,
            )
            for fn in public_functions(registry)
        ]
        spec = build_spec(registry, title=self.title)
        self.routes, self.spec = routes, spec
        self.registry = registry  # only now: a build that failed is tried again

    def refresh(self, app: FastAPI) -> None:
        """After a reload (dev mode) swap in the new registry's routes; else nothing."""
        if self.registry is not self.engine.registry:
            self.swap_into(app)

    def swap_into(self, app: FastAPI) -> None:
        """Rebuild, replacing this object's previous routes in `app` by the new ones."""
        old = {id(r) for r in self.routes}
        self.build()
        kept = [r for r in app.router.routes if id(r) not in old]
        app.router.routes[:] = self.routes + kept


def install_rest(app: FastAPI, engine: Engine) -> RestApi:
    """Add the per-function routes, `/openapi.json` and `/docs` (`refresh` rebuilds them)."""
    rest = RestApi(engine, title=app.title)
    app.router.routes[:0] = [*rest.routes, *docs_routes(lambda: rest.spec, app.title)]
    app.openapi = lambda: rest.spec  # type: ignore[method-assign]
    app.state.rest = rest
    return rest
