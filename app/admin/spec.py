"""The app's functions and schema in Convex's JSON shapes (`modules:apiSpec`, `getSchemas`)."""

from __future__ import annotations

from typing import Any

from app.engine.registry import Registry
from app.schema.definition import SchemaDefinition, TableDefinition
from app.values import Validator

_TYPES = {"float64": "number", "int64": "bigint"}
_UDF_TYPES = {"query": "Query", "mutation": "Mutation", "action": "Action"}


def convex_validator(validator: Validator | None) -> dict[str, Any]:
    """A validator as Convex's `ValidatorJSON` (`{"type": "object", "value": {...}}`)."""
    if validator is None:
        return {"type": "any"}
    return _convert(validator.to_json())


def _field(desc: dict[str, Any]) -> dict[str, Any]:
    optional = bool(desc.get("optional", False))
    inner = {k: val for k, val in desc.items() if k != "optional"}
    return {"fieldType": _convert(inner), "optional": optional}


def _convert(desc: dict[str, Any]) -> dict[str, Any]:
    kind = desc["type"]
    if kind == "object":
        return {"type": "object", "value": {k: _field(d) for k, d in desc["fields"].items()}}
    if kind == "record":
        return {
            "type": "record",
            "keys": _convert(desc["keys"]),
            "values": {"fieldType": _convert(desc["values"]), "optional": False},
        }
    if kind == "array":
        return {"type": "array", "value": _convert(desc["value"])}
    if kind == "union":
        return {"type": "union", "value": [_convert(m) for m in desc["value"]]}
    if kind in ("literal", "id"):
        return {k: val for k, val in desc.items() if k != "optional"}
    return {"type": _TYPES.get(kind, kind)}


def function_spec(registry: Registry) -> list[dict[str, Any]]:
    """Every function of the app as Convex's `apiSpec` lists them (HTTP routes too)."""
    out: list[dict[str, Any]] = []
    for path, fn in sorted(registry.functions.items()):
        if fn.kind not in _UDF_TYPES:
            continue
        module, name = path.rsplit(":", 1)
        out.append(
            {
                "identifier": f"{module}.js:{name}",
                "functionType": _UDF_TYPES[fn.kind],
                "visibility": {"kind": "public" if fn.is_public else "internal"},
                "args": convex_validator(fn.args),
                "returns": convex_validator(fn.returns),
            }
        )
    for route in getattr(registry.http, "routes", None) or []:
        method = getattr(route, "method", None)
        where = getattr(route, "path", None) or getattr(route, "path_prefix", None)
        if method and where:
            out.append({"functionType": "HttpAction", "method": method, "path": where})
    return out


def _table_json(name: str, table: TableDefinition) -> dict[str, Any]:
    return {
        "tableName": name,
        "indexes": [
            {"indexDescriptor": index, "fields": list(fields)}
            for index, fields in sorted(table.indexes.items())
        ],
        "searchIndexes": [
            {
                "indexDescriptor": index,
                "searchField": spec.search_field,
                "filterFields": list(spec.filter_fields),
            }
            for index, spec in sorted(table.search_indexes.items())
        ],
        "vectorIndexes": [
            {
                "indexDescriptor": index,
                "vectorField": spec.vector_field,
                "dimensions": spec.dimensions,
                "filterFields": list(spec.filter_fields),
            }
            for index, spec in sorted(table.vector_indexes.items())
        ],
        "documentType": convex_validator(table.validator),
    }


def schema_json(schema: SchemaDefinition | None) -> dict[str, Any] | None:
    """The schema as Convex stores its active one (`{"tables": [...], "schemaValidation"}`)."""
    if schema is None:
        return None
    return {
        "tables": [_table_json(name, t) for name, t in sorted(schema.tables.items())],
        "schemaValidation": schema.schema_validation,
    }


__all__ = ["convex_validator", "function_spec", "schema_json"]
