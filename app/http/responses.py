"""JSON responses in Convex's shapes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from app.engine import Outcome
from app.values import encode_value


class JSONResponse(Response):
    """A JSON response rendered with orjson (floats keep their decimal point)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """A non-function error: `{"code", "message"}` with a 4xx/5xx status."""
    return JSONResponse({"code": code, "message": message}, status_code=status)


def outcome_response(outcome: Outcome, *, dev: bool) -> JSONResponse:
    """A call's outcome over HTTP: 200 with `outcome_body`, or 503 when overloaded."""
    if outcome.error is not None and outcome.error.overloaded:
        return JSONResponse(
            {"code": "Overloaded", "message": outcome.error.message},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse(outcome_body(outcome, dev=dev))


def outcome_body(outcome: Outcome, *, dev: bool) -> dict[str, Any]:
    """A function's result as `{"status": "success"|"error", ...}` (HTTP 200 either way)."""
    body: dict[str, Any]
    if outcome.error is None:
        body = {"status": "success", "value": outcome.value}
    else:
        body = {"status": "error", "errorMessage": outcome.error.message}
        if outcome.error.is_convex_error:
            body["errorData"] = encode_value(outcome.error.data)
    body["logLines"] = outcome.log_lines if dev else []
    return body
