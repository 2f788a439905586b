"""Convex's admin surface: the `_system/...` functions its CLI, MCP server and dashboard call."""

from app.admin.spec import convex_validator, function_spec, schema_json
from app.admin.system import system_functions

__all__ = ["convex_validator", "function_spec", "schema_json", "system_functions"]
