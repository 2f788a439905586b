"""Schema definitions: tables, their validators and indexes. Checked when defined."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.schema.names import check_table_name
from app.values import Validator, as_validator
from app.values.validators import AnyValidator, ObjectValidator, UnionValidator

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
    staged: set[str] = field(default_factory=set)  # indexes built but not yet queryable

    def all_index_names(self) -> set[str]:
        """Every index name on this table, of any kind."""
        return set(self.indexes) | set(self.search_indexes) | set(self.vector_indexes)

    def index(
        self, name: str, fields: list[str] | tuple[str, ...] | dict[str, Any]
    ) -> TableDefinition:
        """Add an index on `fields` (in order); `_creationTime` is appended implicitly.

        `fields` is a list, or Convex's object form `{"fields": [...], "staged": bool}`.
        """
        _check_index_name(self, name)
        staged = False
        if isinstance(fields, dict):
            options = _index_options(f"Index {name!r}", fields, ("fields",))
            fields = options["fields"]
            staged = bool(options.get("staged", False))
        if isinstance(fields, str) or not isinstance(fields, list | tuple) or not fields:
            raise ValueError(f"Index {name!r}: fields must be a non-empty list of field names")
        checked = tuple(_check_field(f, f"field of index {name!r}") for f in fields)
        if len(set(checked)) != len(checked):
            raise ValueError(f"Index {name!r}: a field appears twice")
        if "_creationTime" in checked[:-1]:
            raise ValueError(f"Index {name!r}: _creationTime may only be the last field")
        self.indexes[name] = checked
        self._stage(name, staged)
        return self

    def _stage(self, name: str, staged: bool) -> None:
        if staged:
            self.staged.add(name)

    def search_index(
        self,
        name: str,
        config: dict[str, Any] | None = None,
        *,
        search_field: str | None = None,
        filter_fields: list[str] | tuple[str, ...] = (),
        staged: bool = False,
    ) -> TableDefinition:
        """Add a full-text search index on `search_field` (keywords, or Convex's object
        form `{"searchField": ..., "filterFields": [...], "staged": bool}`)."""
        _check_index_name(self, name)
        if config is not None:
            if search_field is not None or filter_fields or staged:
                raise TypeError(f"Search index {name!r}: give keywords or one dict, not both")
            options = _index_options(f"Search index {name!r}", config, ("searchField",))
            search_field = options["searchField"]
            filter_fields = options.get("filterFields", ())
            staged = options.get("staged", False)
        filter_fields = _field_list(f"Search index {name!r}", filter_fields)
        _flag(f"Search index {name!r}", staged)
        self.search_indexes[name] = SearchIndex(
            _check_field(search_field, "search field"),
            tuple(_check_field(f, "filter field") for f in filter_fields),
        )
        self._stage(name, staged)
        return self

    def vector_index(
        self,
        name: str,
        config: dict[str, Any] | None = None,
        *,
        vector_field: str | None = None,
        dimensions: int | None = None,
        filter_fields: list[str] | tuple[str, ...] = (),
        staged: bool = False,
    ) -> TableDefinition:
        """Add a vector index (cosine) on `vector_field` with `dimensions` dimensions
        (keywords, or Convex's object form `{"vectorField", "dimensions", "filterFields",
        "staged"}`)."""
        _check_index_name(self, name)
        if config is not None:
            if vector_field is not None or dimensions is not None or filter_fields or staged:
                raise TypeError(f"Vector index {name!r}: give keywords or one dict, not both")
            options = _index_options(
                f"Vector index {name!r}", config, ("vectorField", "dimensions")
            )
            vector_field = options["vectorField"]
            dimensions = options["dimensions"]
            filter_fields = options.get("filterFields", ())
            staged = options.get("staged", False)
        filter_fields = _field_list(f"Vector index {name!r}", filter_fields)
        _flag(f"Vector index {name!r}", staged)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool):
            raise ValueError(f"Vector index {name!r}: dimensions must be an integer")
        if not 2 <= dimensions <= 4096:
            raise ValueError(f"Vector index {name!r}: dimensions must be between 2 and 4096")
        self.vector_indexes[name] = VectorIndex(
            _check_field(vector_field, "vector field"),
            dimensions,
            tuple(_check_field(f, "filter field") for f in filter_fields),
        )
        self._stage(name, staged)
        return self

    def to_json(self) -> dict[str, Any]:
        """A plain description, stored in the database to diff deployments."""
        return {
            "validator": self.validator.to_json() if self.validator is not None else None,
            "indexes": {k: list(f) for k, f in sorted(self.indexes.items())},
            **({"staged": sorted(self.staged)} if self.staged else {}),
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


_INDEX_KEYS = {
    "fields": list,
    "searchField": str,
    "vectorField": str,
    "dimensions": int,
    "filterFields": list,
    "staged": bool,
}


_KIND_NAMES = {
    list: "a list of field names",
    str: "a string",
    int: "an integer",
    bool: "True or False",
}


def _index_options(what: str, config: object, required: tuple[str, ...]) -> dict[str, Any]:
    """Convex's object form of an index's options, checked: known keys of the right types."""
    if not isinstance(config, dict):
        raise ValueError(f"{what}: options must be a dict, got {type(config).__name__}")
    allowed = {*required, "staged"}
    if "searchField" in required or "vectorField" in required:
        allowed.add("filterFields")
    for key, value in config.items():
        if key not in allowed:
            raise ValueError(
                f"{what}: unknown option {key!r}; expected {', '.join(sorted(allowed))}"
            )
        kind = _INDEX_KEYS[key]
        ok = isinstance(value, list | tuple) if kind is list else isinstance(value, kind)
        if kind is int and isinstance(value, bool):
            ok = False
        if not ok:
            raise ValueError(
                f"{what}: option {key!r} must be {_KIND_NAMES[kind]}, got {type(value).__name__}"
            )
    missing = [k for k in required if k not in config]
    if missing:
        raise ValueError(f"{what}: missing option {missing[0]!r}")
    return config


def _field_list(what: str, fields: object) -> tuple[str, ...]:
    if isinstance(fields, str) or not isinstance(fields, list | tuple):
        raise ValueError(f"{what}: filter fields must be a list of field names")
    return tuple(fields)


def _flag(what: str, staged: object) -> bool:
    if not isinstance(staged, bool):
        raise ValueError(f"{what}: staged must be True or False, got {staged!r}")
    return staged


def _document_validator(validator: Validator) -> None:
    """Check a table's document validator: an object, a union of objects, or v.any()."""
    if isinstance(validator, AnyValidator):
        return
    members = validator.members if isinstance(validator, UnionValidator) else (validator,)
    for member in members:
        if not isinstance(member, ObjectValidator):
            raise TypeError(
                "define_table takes a dict of validators, a v.object(...), a v.union of "
                f"v.object(...) or v.any(); got {validator!r}"
            )
        for name in member.fields:
            if name.startswith("_"):
                raise ValueError(f"Field {name!r}: names starting with '_' are reserved")


def define_table(fields: dict[str, Validator] | Validator | None = None) -> TableDefinition:
    """A table whose documents match `fields`: a dict of validators, a v.object, a v.union
    of v.objects (a document matches one of them), or v.any()."""
    if fields is None:
        return TableDefinition(validator=None)
    validator = as_validator(fields)
    _document_validator(validator)
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
