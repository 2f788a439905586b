"""HttpRouter: definition errors at registration, and lookup by path, prefix and method."""

from __future__ import annotations

from typing import Any

import pytest

from app.server import HttpRouter, http_action


async def handler(ctx: Any, request: Any) -> Any:
    return None


def test_routes_are_found_by_exact_path_then_longest_prefix() -> None:
    http = HttpRouter()
    http.route(path="/a", method="GET", handler=handler)
    http.route(path_prefix="/a/", method="GET", handler=handler)
    http.route(path_prefix="/a/b/", method="post", handler=handler)
    assert http.lookup("GET", "/a")[0].path == "/a"  # type: ignore[union-attr]
    assert http.lookup("GET", "/a/x")[0].path_prefix == "/a/"  # type: ignore[union-attr]
    assert http.lookup("POST", "/a/b/c")[0].path_prefix == "/a/b/"  # type: ignore[union-attr]
    assert http.lookup("HEAD", "/a")[0] is not None
    assert http.lookup("PUT", "/a") == (None, True)
    assert http.lookup("GET", "/b") == (None, False)
    assert http.methods_for("/a/b/c") == ["GET", "HEAD", "POST"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "/x", "method": "FETCH"}, "Unsupported HTTP method"),
        ({"path": "x", "method": "GET"}, "must start with '/'"),
        ({"path_prefix": "/x", "method": "GET"}, "start and end with '/'"),
        ({"path": "/x", "path_prefix": "/x/", "method": "GET"}, "exactly one"),
        ({"method": "GET"}, "exactly one"),
    ],
)
def test_bad_routes_fail_when_defined(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HttpRouter().route(handler=handler, **kwargs)


def test_a_route_defined_twice_fails() -> None:
    http = HttpRouter()
    http.route(path="/x", method="GET", handler=handler)
    with pytest.raises(ValueError, match="defined twice"):
        http.route(path="/x", method="GET", handler=handler)


def test_a_sync_handler_fails_when_defined() -> None:
    def sync(ctx: Any, request: Any) -> None:
        return None

    with pytest.raises(TypeError, match="async def"):
        HttpRouter().route(path="/x", method="GET", handler=sync)
    with pytest.raises(TypeError, match="async def"):
        http_action(sync)  # type: ignore[arg-type]
