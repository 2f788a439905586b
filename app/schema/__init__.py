"""What app authors write in `schema.py`: `define_schema`, `define_table`."""

from app.schema.definition import (
    SchemaDefinition,
    SearchIndex,
    TableDefinition,
    VectorIndex,
    define_schema,
    define_table,
)

__all__ = [
    "SchemaDefinition",
    "SearchIndex",
    "TableDefinition",
    "VectorIndex",
    "define_schema",
    "define_table",
]
