"""The Convex HTTP API: /api/query, /api/mutation, /api/action, /api/function, /api/run/..."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app.auth import AuthenticationError
from app.db.snapshots import SnapshotUnavailable
from app.engine import MAX_ARGS_BYTES, Engine, InvalidArgs, decode_args
from app.http.responses import JSONResponse, error_response, outcome_response
from app.server.functions import Kind
from app.sync.protocol import decode_ts, encode_ts

FORMATS = ("convex_encoded_json", "json")


class BadRequest(Exception):
    """A request the API cannot take: answered with 4xx `{"code", "message"}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


async def read_json(request: Request, *, empty: Any = ...) -> Any:
    """The request's JSON body, with size and content-type checks (`empty` for no body)."""
    ctype = request.headers.get("content-type", "")
    if ctype and ctype.split(";")[0].strip().lower() != "application/json":
        raise BadRequest(
            415, "BadContentType", f"Expected Content-Type application/json, got {ctype!r}"
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_ARGS_BYTES:
        raise BadRequest(413, "ArgumentsTooLarge", f"Request body exceeds {MAX_ARGS_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_ARGS_BYTES:
            raise BadRequest(
                413, "ArgumentsTooLarge", f"Request body exceeds {MAX_ARGS_BYTES} bytes"
            )
    if not body and empty is not ...:
        return empty
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, "BadJsonBody", f"Request body is not valid JSON: {exc}") from None


def parse_args(raw: Any) -> dict[str, Any]:
    """Function args from an HTTP body (already size-checked), decoded; 400 when invalid."""
    try:
        return decode_args(raw, measured=True)
    except InvalidArgs as exc:
        raise BadRequest(400, "InvalidArgs", str(exc)) from None


def parse_call_body(body: Any) -> tuple[str, dict[str, Any]]:
    """(path, args) of a `{"path", "args", "format"}` body."""
    if not isinstance(body, dict):
        raise BadRequest(400, "BadJsonBody", "Request body must be a JSON object")
    path = body.get("path")
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise BadRequest(400, "BadJsonBody", "Request body needs a string `path` (module:function)")
    fmt = body.get("format", "convex_encoded_json")
    if fmt not in FORMATS:
        raise BadRequest(400, "BadJsonBody", f"Unsupported format {fmt!r}; use one of {FORMATS}")
    return path, parse_args(body.get("args"))


async def run_call(
    engine: Engine, request: Request, path: str, args: dict[str, Any], kind: Kind | None
) -> Response:
    """Authenticate and run one call; reply in Convex's shape."""
    try:
        principal = await engine.principal(request.headers.get("authorization"))
    except AuthenticationError as exc:
        return error_response(401, exc.code, str(exc))
    outcome = await engine.call(path, args, principal, kind)
    return outcome_response(outcome, dev=engine.settings.dev)


def make_call_endpoint(engine: Engine, kind: Kind | None) -> Any:
    """An endpoint for /api/query, /api/mutation, /api/action (kind None: /api/function)."""

    async def endpoint(request: Request) -> Response:
        try:
            path, args = parse_call_body(await read_json(request))
        except BadRequest as exc:
            return error_response(exc.status, exc.code, exc.message)
        return await run_call(engine, request, path, args, kind)

    return endpoint


def make_query_ts_endpoint(engine: Engine) -> Any:
    """POST /api/query_ts: the newest commit timestamp, its snapshot held for
    /api/query_at_ts (ConvexHttpClient.consistentQuery)."""

    async def endpoint(request: Request) -> Response:
        try:
            ts = await engine.query_ts()
        except SnapshotUnavailable as exc:
            return error_response(503, "ConsistentReadsUnavailable", str(exc))
        return JSONResponse({"ts": encode_ts(ts)})

    return endpoint


def make_query_at_ts_endpoint(engine: Engine) -> Any:
    """POST /api/query_at_ts: `{"path", "args", "ts"}`, a query read at the snapshot of a
    timestamp /api/query_ts handed out; 400 `OutOfRetention` once it is no longer held."""

    async def endpoint(request: Request) -> Response:
        try:
            body = await read_json(request)
            path, args = parse_call_body(body)
            try:
                ts = decode_ts(body.get("ts"))
            except ValueError as exc:
                raise BadRequest(400, "BadJsonBody", f"`ts`: {exc}") from None
            principal = await engine.principal(request.headers.get("authorization"))
            outcome = await engine.query_at_ts(path, args, principal, ts)
        except BadRequest as exc:
            return error_response(exc.status, exc.code, exc.message)
        except AuthenticationError as exc:
            return error_response(401, "Unauthenticated", str(exc))
        except SnapshotUnavailable as exc:
            return error_response(400, "OutOfRetention", str(exc))
        return outcome_response(outcome, dev=engine.settings.dev)

    return endpoint
