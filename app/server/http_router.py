"""`HttpRouter`: HTTP actions on the site listener, by exact path or path prefix."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from app.server.functions import RegisteredFunction

HttpHandler = Callable[[Any, Any], Awaitable[Any]]
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")


@dataclass(frozen=True)
class HttpRoute:
    """One route: exact `path` or `path_prefix`, a method, and the handler."""

    method: str
    handler: HttpHandler
    path: str | None = None
    path_prefix: str | None = None

    @functools.cached_property
    def function(self) -> RegisteredFunction:
        """The route as the engine runs it: an `httpAction` named `METHOD /path`."""
        where = self.path if self.path is not None else f"{self.path_prefix}*"
        return RegisteredFunction(
            kind="httpAction",
            visibility="public",
            handler=self.handler,
            args=None,
            returns=None,
            name=getattr(self.handler, "__name__", "handler"),
            module=getattr(self.handler, "__module__", "?"),
            path=f"{self.method} {where}",
        )


def _check_handler(handler: Any) -> HttpHandler:
    if not inspect.iscoroutinefunction(handler):
        raise TypeError("An HTTP action is `async def handler(ctx, request)`")
    return cast(HttpHandler, handler)


class HttpRouter:
    """Routes HTTP requests on the site listener to `async def handler(ctx, request)`."""

    def __init__(self, *, cors: bool | dict[str, Any] = False) -> None:
        self.routes: list[HttpRoute] = []
        self.cors = cors

    def route(
        self,
        *,
        method: str,
        path: str | None = None,
        path_prefix: str | None = None,
        handler: HttpHandler | None = None,
    ) -> Any:
        """Add a route; use as a decorator or pass `handler=`."""
        method = method.upper() if isinstance(method, str) else method
        if method not in METHODS:
            raise ValueError(f"Unsupported HTTP method {method!r}; use one of {METHODS}")
        if (path is None) == (path_prefix is None):
            raise ValueError("Give exactly one of path= or path_prefix=")
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            raise ValueError(f"path must start with '/', got {path!r}")
        if path_prefix is not None and (
            not isinstance(path_prefix, str)
            or not path_prefix.startswith("/")
            or not path_prefix.endswith("/")
        ):
            raise ValueError(f"path_prefix must start and end with '/', got {path_prefix!r}")
        for r in self.routes:
            if r.method == method and r.path == path and r.path_prefix == path_prefix:
                raise ValueError(f"Route {method} {path or path_prefix} is defined twice")

        def add(fn: HttpHandler) -> HttpHandler:
            self.routes.append(HttpRoute(method, _check_handler(fn), path, path_prefix))
            return fn

        if handler is not None:
            return add(handler)
        return add

    def lookup(self, method: str, path: str) -> tuple[HttpRoute | None, bool]:
        """The route for a request, and whether the path exists for some other method."""
        exact = [r for r in self.routes if r.path == path]
        prefixed = sorted(
            (r for r in self.routes if r.path_prefix and path.startswith(r.path_prefix)),
            key=lambda r: -len(r.path_prefix or ""),
        )
        candidates = exact + prefixed
        wanted = "GET" if method == "HEAD" else method
        for r in candidates:
            if r.method == method or r.method == wanted:
                return r, True
        return None, bool(candidates)

    def methods_for(self, path: str) -> list[str]:
        """The methods some route accepts at `path` (for a 405's `Allow` header)."""
        methods = {
            r.method
            for r in self.routes
            if r.path == path or (r.path_prefix and path.startswith(r.path_prefix))
        }
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)


def http_action(handler: HttpHandler) -> HttpHandler:
    """Mark a function as an HTTP action (Convex's `httpAction`); returns it unchanged."""
    return _check_handler(handler)
