"""Schema definitions: tables, their validators and indexes. Checked when defined."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.schema.names import check_table_name
from app.values import Validator, as_validator

_INDEX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
RESERVED_INDEXES = ("by_id", "by_creation_time")


def _check_index_name(table: TableDefinition, name: object) -> str:
    if not isinstance(name, str) or not _INDEX_RE.match(name):
        raise ValueError(f"Invalid index name {name!r}: letters, digits and underscores only")
    if name in RESERVED_INDEXES or name in table.all_index_names():
        raise ValueError(f"Index name {name!r} is reserved or already used on this table")
    return name


def _check_field(name: object, what: str) -> str:
    if not isinstance(name, str) or not _FIELD_RE.match(name):
        raise ValueError(f"Invalid {what} {name!r}: a field name or a dotted path")
    if name.startswith("_") and name != "_creationTime":
        raise ValueError(f"Invalid {what} {name!r}: system fields cannot be indexed")
    return name


@dataclass(frozen=True)
class SearchIndex:
    """A full-text search index over one string field."""

    search_field: str
    filter_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class VectorIndex:
    """A vector index over one array-of-float64 field."""

    vector_field: str
    dimensions: int
    filter_fields: tuple[str, ...] = ()


@dataclass
class TableDefinition:
    """A table: its document validator and its indexes."""

    validator: Validator | None
    indexes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    search_indexes: dict[str, SearchIndex] = field(default_factory=dict)
    vector_indexes: dict[str, VectorIndex] = field(default_factory=dict)

    def all_index_names(self) -> set[str]:
        """Every index name on this table, of any kind."""
        return set(self.indexes) | set(self.search_indexes) | set(self.vector_indexes)

    def index(self, name: str, fields: list[str] | tuple[str, ...]) -> TableDefinition:
        """Add an index on `fields` (in order); `_creationTime` is appended implicitly."""
        _check_index_name(self, name)
        if isinstance(fields, str) or not fields:
            raise ValueError(f"Index {name!r}: fields must be a non-empty list of field names")
        checked = tuple(_check_field(f, f"field of index {name!r}") for f in fields)
        if len(set(checked)) != len(checked):
            raise ValueError(f"Index {name!r}: a field appears twice")
        if "_creationTime" in checked[:-1]:
            raise ValueError(f"Index {name!r}: _creationTime may only be the last field")
        self.indexes[name] = checked
        return self

    def search_index(
        self, name: str, *, search_field: str, filter_fields: list[str] | tuple[str, ...] = ()
    ) -> TableDefinition:
        """Add a full-text search index on `search_field`."""
        _check_index_name(self, name)
        self.search_indexes[name] = SearchIndex(
            _check_field(search_field, "search field"),
            tuple(_check_field(f, "filter field") for f in filter_fields),
        )
        return self

    def vector_index(
        self,
        name: str,
        *,
        vector_field: str,
        dimensions: int,
        filter_fields: list[str] | tuple[str, ...] = (),
    ) -> TableDefinition:
        """Add a vector index (cosine) on `vector_field` with `dimensions` dimensions."""
        _check_index_name(self, name)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool):
            raise ValueError(f"Vector index {name!r}: dimensions must be an integer")
        if not 2 <= dimensions <= 4096:
            raise ValueError(f"Vector index {name!r}: dimensions must be between 2 and 4096")
        self.vector_indexes[name] = VectorIndex(
            _check_field(vector_field, "vector field"),
            dimensions,
            tuple(_check_field(f, "filter field") for f in filter_fields),
        )
        return self

    def to_json(self) -> dict[str, Any]:
        """A plain description, stored in the database to diff deployments."""
        return {
            "validator": self.validator.to_json() if self.validator is not None else None,
            "indexes": {k: list(f) for k, f in sorted(self.indexes.items())},
            "searchIndexes": {
                k: {"searchField": s.search_field, "filterFields": list(s.filter_fields)}
                for k, s in sorted(self.search_indexes.items())
            },
            "vectorIndexes": {
                k: {
                    "vectorField": s.vector_field,
                    "dimensions": s.dimensions,
                    "filterFields": list(s.filter_fields),
                }
                for k, s in sorted(self.vector_indexes.items())
            },
        }


def define_table(fields: dict[str, Validator] | Validator | None = None) -> TableDefinition:
    """A table whose documents match `fields` (a dict of validators or a v.object)."""
    if fields is None:
        return TableDefinition(validator=None)
    validator = as_validator(fields)
    if type(validator).__name__ != "ObjectValidator" and not hasattr(validator, "fields"):
        raise TypeError("define_table takes a dict of validators or a v.object(...)")
    for name in getattr(validator, "fields", {}):
        if name.startswith("_"):
            raise ValueError(f"Field {name!r}: names starting with '_' are reserved")
    return TableDefinition(validator=validator)


@dataclass
class SchemaDefinition:
    """All tables of an app, and whether writes are validated against them."""

    tables: dict[str, TableDefinition]
    schema_validation: bool = True
    strict_table_name_types: bool = True

    def to_json(self) -> dict[str, Any]:
        """A plain description, stored in the database to diff deployments."""
        return {
            "tables": {name: t.to_json() for name, t in sorted(self.tables.items())},
            "schemaValidation": self.schema_validation,
        }


def define_schema(
    tables: dict[str, TableDefinition], *, schema_validation: bool = True
) -> SchemaDefinition:
    """The app's schema: a dict of table name to `define_table(...)`."""
    if not isinstance(tables, dict):
        raise TypeError("define_schema takes a dict of table name -> define_table(...)")
    for name, table in tables.items():
        check_table_name(name)
        if not isinstance(table, TableDefinition):
            raise TypeError(
                f"Table {name!r}: expected define_table(...), got {type(table).__name__}"
            )
    return SchemaDefinition(dict(tables), schema_validation=schema_validation)
