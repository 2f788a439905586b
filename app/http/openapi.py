"""The OpenAPI 3.1 document of the per-function REST routes, built from validators."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from app.engine.registry import Registry
from app.server.functions import RegisteredFunction
from app.values.jsonschema import args_schema, convex_value_schema, returns_schema

__all__ = ["build_spec", "operation_id", "public_functions", "route_path"]

REST_PREFIX = "/api/run"
_VALUE_REF = "#/components/schemas/ConvexValue"
_ANY = {"$ref": _VALUE_REF}
_KIND_VERB = {
    "query": "reads the database in one consistent snapshot; it never writes",
    "mutation": "runs in one serializable transaction: it commits whole or not at all",
    "action": "runs outside any transaction and may have side effects",
}
_REQUEST_ERRORS = {
    "400": ("BadRequest", "Malformed body: not JSON, unknown fields, `args` not an object"),
    "401": ("Unauthenticated", "The Authorization header was rejected"),
    "404": ("NotFound", "No public function at this path"),
    "413": ("PayloadTooLarge", "The body exceeds the 8 MiB limit on arguments"),
    "415": ("UnsupportedMediaType", "Content-Type is not application/json"),
}


def public_functions(registry: Registry) -> list[RegisteredFunction]:
    """The registry's public functions in path order (internal ones never appear)."""
    return [fn for path, fn in sorted(registry.functions.items()) if fn.is_public]


def route_path(fn_path: str) -> str:
    """`admin/users:get` → `/api/run/admin/users/get`."""
    module, _, name = fn_path.partition(":")
    return f"{REST_PREFIX}/{module}/{name}"


def operation_id(fn_path: str) -> str:
    """`admin/users:get` → `admin.users.get` (unique: names are Python identifiers)."""
    return fn_path.replace("/", ".").replace(":", ".")


def _module(fn_path: str) -> str:
    return fn_path.partition(":")[0]


def _describe(fn: RegisteredFunction) -> str:
    doc = fn.doc or ""
    kind = f"A **{fn.kind}**: {_KIND_VERB[fn.kind]}."
    return f"{doc}\n\n{kind}" if doc else kind


def _request_body(fn: RegisteredFunction, name: str) -> dict[str, Any]:
    return {
        "required": False,
        "description": "The arguments. An empty body means `{}`.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "args": {"$ref": f"#/components/schemas/{name}.Args"},
                        "format": {
                            "enum": ["json", "convex_encoded_json"],
                            "description": "Value encoding (both mean Convex's JSON encoding)",
                        },
                    },
                    "additionalProperties": False,
                }
            }
        },
    }


def _success(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "title": "Success",
        "properties": {
            "status": {"const": "success"},
            "value": {"$ref": f"#/components/schemas/{name}.Returns"},
            "logLines": {"$ref": "#/components/schemas/LogLines"},
        },
        "required": ["status", "value"],
        "additionalProperties": False,
    }


def _operation(fn: RegisteredFunction) -> dict[str, Any]:
    path = fn.path or fn.name  # the registry sets the path of every function it holds
    name = operation_id(path)
    return {
        "operationId": name,
        "summary": f"{fn.kind} {path}",
        "description": _describe(fn),
        "tags": [_module(path)],
        "x-convex-kind": fn.kind,
        "x-convex-path": path,
        "security": [{}, {"bearerAuth": []}, {"convexAdmin": []}],
        "requestBody": _request_body(fn, name),
        "responses": {
            "200": {
                "description": (
                    "The function ran: `status` is `success` with its `value`, or `error` "
                    "(argument validation, a `ConvexError` with `errorData`, or a server error)."
                ),
                "content": {
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                _success(name),
                                {"$ref": "#/components/schemas/ArgumentValidationError"},
                                {"$ref": "#/components/schemas/ConvexError"},
                                {"$ref": "#/components/schemas/FunctionError"},
                            ]
                        }
                    }
                },
            },
            **{
                code: {"$ref": f"#/components/responses/{ref}"}
                for code, (ref, _) in _REQUEST_ERRORS.items()
            },
        },
    }


def _error_result(title: str, description: str, **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "status": {"const": "error"},
        "errorMessage": {"type": "string"},
        "errorData": {"$ref": _VALUE_REF, "description": "The ConvexError's data"},
        "logLines": {"$ref": "#/components/schemas/LogLines"},
    }
    for key, schema in extra.pop("properties", {}).items():
        props[key] = schema
    return {
        "type": "object",
        "title": title,
        "description": description,
        "properties": props,
        "required": ["status", "errorMessage", *extra.pop("required", [])],
        "additionalProperties": False,
        **extra,
    }


def _components(functions: list[RegisteredFunction]) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "ConvexValue": convex_value_schema(_VALUE_REF),
        "LogLines": {
            "type": "array",
            "items": {"type": "string"},
            "description": "What the function printed (dev mode only; empty in prod)",
        },
        "ArgumentValidationError": _error_result(
            "ArgumentValidationError",
            "The arguments do not match the function's validators; nothing ran.",
            properties={
                "errorMessage": {"type": "string", "pattern": "^ArgumentValidationError: "}
            },
            examples=[
                {
                    "status": "error",
                    "errorMessage": "ArgumentValidationError: Object is missing the required "
                    "field `author`.",
                    "logLines": [],
                }
            ],
        ),
        "ConvexError": _error_result(
            "ConvexError",
            "The function threw `ConvexError(data)`; `errorData` carries the data.",
            required=["errorData"],
            examples=[
                {
                    "status": "error",
                    "errorMessage": "Uncaught ConvexError: Not found",
                    "errorData": "Not found",
                    "logLines": [],
                }
            ],
        ),
        "FunctionError": _error_result(
            "FunctionError",
            "Any other failure: a server error carrying a request id (detail in dev mode).",
        ),
        "RequestError": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
            "additionalProperties": False,
        },
    }
    for fn in functions:
        name = operation_id(fn.path or fn.name)
        schemas[f"{name}.Args"] = args_schema(fn.args, _ANY)
        schemas[f"{name}.Returns"] = returns_schema(fn.returns, _ANY)
    responses = {
        ref: {
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RequestError"}}
            },
        }
        for ref, description in _REQUEST_ERRORS.values()
    }
    return {
        "schemas": schemas,
        "responses": responses,
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A user's JWT from a provider in auth_config.py",
            },
            "convexAdmin": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Convex <admin key>`",
            },
        },
    }


def build_spec(registry: Registry, *, title: str = "Convect") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every public function of `registry`."""
    functions = public_functions(registry)
    modules = sorted({_module(fn.path or "") for fn in functions})
    tags = []
    for module in modules:
        tag: dict[str, Any] = {"name": module}
        doc = getattr(registry.modules.get(module), "__doc__", None)
        if doc:
            tag["description"] = doc.strip()
        tags.append(tag)
    paths = {route_path(fn.path or ""): {"post": _operation(fn)} for fn in functions}
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "",
            "description": (
                "Every public function of this app as `POST /api/run/{module path}/{name}` "
                'with the body `{"args": {...}}`. Values use Convex\'s JSON encoding '
                '(`{"$integer": ...}` for int64, `{"$bytes": ...}` for bytes). Function '
                "results and function errors answer HTTP 200 with `status`; malformed "
                "requests answer 4xx with `code` and `message`."
            ),
        },
        "tags": tags,
        "paths": paths,
        "components": _components(functions),
    }
    digest = hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()
    spec["info"]["version"] = digest[:12]
    return spec
