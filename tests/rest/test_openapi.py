"""/openapi.json: a valid OpenAPI 3.1 document of every public function, and offline docs."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from app.engine.registry import Registry, load_registry
from app.http.openapi import build_spec, operation_id, route_path
from app.values.jsonschema import args_schema, returns_schema
from tests.conftest import ADMIN_HEADERS, DEMO, KITCHEN
from tests.support.servers import ServerProcess

ANY = {"$ref": "#/components/schemas/ConvexValue"}


@pytest.fixture(scope="module")
def demo_registry() -> Registry:
    return load_registry(DEMO)


@pytest.fixture(scope="module")
def served_spec(demo_server: ServerProcess) -> dict[str, Any]:
    r = httpx.get(f"{demo_server.url}/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    spec: dict[str, Any] = r.json()
    return spec


def test_the_served_spec_validates_as_openapi_3_1(served_spec: dict[str, Any]) -> None:
    assert served_spec["openapi"] == "3.1.0"
    errors = list(OpenAPIV31SpecValidator(served_spec).iter_errors())
    assert errors == []


def test_every_public_demo_function_is_a_route_with_its_validators_schemas(
    served_spec: dict[str, Any], demo_registry: Registry
) -> None:
    public = [fn for fn in demo_registry.functions.values() if fn.is_public]
    assert len(public) >= 15
    schemas = served_spec["components"]["schemas"]
    for fn in public:
        assert fn.path is not None
        op = served_spec["paths"][route_path(fn.path)]["post"]
        name = operation_id(fn.path)
        assert op["operationId"] == name
        assert op["summary"] == f"{fn.kind} {fn.path}"
        assert op["x-convex-kind"] == fn.kind
        assert op["x-convex-path"] == fn.path
        assert op["tags"] == [fn.path.split(":")[0]]
        assert op["description"].startswith(fn.doc or "")
        assert f"**{fn.kind}**" in op["description"]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["args"] == {"$ref": f"#/components/schemas/{name}.Args"}
        assert schemas[f"{name}.Args"] == args_schema(fn.args, ANY)
        assert schemas[f"{name}.Returns"] == returns_schema(fn.returns, ANY)
    assert len(served_spec["paths"]) == len(public)


def test_a_route_schema_spells_out_ids_and_optional_arguments(
    served_spec: dict[str, Any],
) -> None:
    schemas = served_spec["components"]["schemas"]
    assert schemas["messages.get.Args"] == {
        "type": "object",
        "properties": {
            "id": {
                "type": "string",
                "description": "Id of a document in table messages",
                "x-convex-table": "messages",
            }
        },
        "required": ["id"],
        "additionalProperties": False,
    }
    newest = schemas["messages.newest_by_author.Args"]
    assert newest["required"] == ["author"]
    assert set(newest["properties"]) == {"author", "count"}


def test_no_internal_function_is_in_the_spec(
    served_spec: dict[str, Any], demo_registry: Registry
) -> None:
    internal = [fn for fn in demo_registry.functions.values() if not fn.is_public]
    assert {fn.path for fn in internal} >= {"logs:record", "logs:_cleanup", "secrets:_get_secret"}
    documented = {op["post"]["x-convex-path"] for op in served_spec["paths"].values()}
    text = str(served_spec)
    for fn in internal:
        assert fn.path is not None
        assert fn.path not in documented
        assert route_path(fn.path) not in served_spec["paths"]
        assert f"{operation_id(fn.path)}.Args" not in served_spec["components"]["schemas"]
        assert f"'{fn.path}'" not in text


async def test_internal_functions_answer_404_on_rest_even_for_admin(
    demo: httpx.AsyncClient, demo_registry: Registry
) -> None:
    for fn in demo_registry.functions.values():
        if fn.is_public:
            continue
        assert fn.path is not None
        for headers in ({}, ADMIN_HEADERS):
            r = await demo.post(route_path(fn.path), json={"args": {}}, headers=headers)
            assert r.status_code == 404, (fn.path, r.text)
            assert r.json()["code"] == "NotFound"


def test_every_route_documents_function_and_request_errors(served_spec: dict[str, Any]) -> None:
    for path, item in served_spec["paths"].items():
        responses = item["post"]["responses"]
        assert set(responses) == {"200", "400", "401", "404", "413", "415"}, path
        refs = [
            s.get("$ref")
            for s in responses["200"]["content"]["application/json"]["schema"]["anyOf"]
        ]
        assert "#/components/schemas/ArgumentValidationError" in refs
        assert "#/components/schemas/ConvexError" in refs
    components = served_spec["components"]
    assert components["schemas"]["ConvexError"]["required"] == [
        "status",
        "errorMessage",
        "errorData",
    ]
    assert components["schemas"]["RequestError"]["required"] == ["code", "message"]
    assert set(components["securitySchemes"]) == {"bearerAuth", "convexAdmin"}


def test_modules_are_tags_described_by_their_docstrings(
    served_spec: dict[str, Any], demo_registry: Registry
) -> None:
    tags = {t["name"]: t.get("description") for t in served_spec["tags"]}
    assert tags["messages"] == (demo_registry.modules["messages"].__doc__ or "").strip()
    assert "logs" in tags  # logs has public functions besides its internal ones
    assert "secrets" in tags


def test_every_validator_kind_comes_out_in_the_kitchen_spec() -> None:
    registry = load_registry(KITCHEN)
    spec = build_spec(registry)
    assert list(OpenAPIV31SpecValidator(spec).iter_errors()) == []
    args = spec["components"]["schemas"]["rest_types.echo.Args"]["properties"]
    assert args["big"]["properties"]["$integer"]["type"] == "string"
    assert args["blob"]["required"] == ["$bytes"]
    assert args["ref"]["x-convex-table"] == "rest_things"
    assert args["mode"] == {
        "anyOf": [{"const": "fast"}, {"const": "slow"}, {"const": 3.0}, {"const": True}]
    }
    assert args["scores"]["type"] == "object"
    assert "anyOf" in args["scores"]["additionalProperties"]
    assert args["point"]["required"] == ["x"]
    assert args["anything"] == ANY
    loose = spec["components"]["schemas"]["rest_types.loose.Args"]
    assert loose["additionalProperties"] == ANY
    assert loose["propertyNames"]["pattern"] == "^[ -#%-~][ -~]*$"
    returns = spec["components"]["schemas"]["rest_types.bump.Returns"]
    assert returns["x-convex-type"] == "int64"
    keys = spec["components"]["schemas"]["rest_types.true_keys.Args"]["properties"]["keys"]
    assert keys["propertyNames"] == {"anyOf": [{"const": "a"}, {"const": "b"}]}
    assert "/api/run/rest_types/hidden" not in spec["paths"]


def test_the_docs_page_loads_only_assets_this_server_serves(demo_server: ServerProcess) -> None:
    page = httpx.get(f"{demo_server.url}/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(
        r"url: '([^']+)'", page.text
    )
    assert "/openapi.json" in urls
    assert len(urls) >= 4
    for url in urls:
        assert url.startswith("/"), url
        r = httpx.get(f"{demo_server.url}{url}")
        assert r.status_code == 200, url
        assert len(r.content) > 500, url
    assert httpx.get(f"{demo_server.url}/docs/../app/cli.py").status_code == 404
    assert httpx.get(f"{demo_server.url}/docs/index.html").status_code == 404
