"""The export zip: `manifest.json`, `schema.json`, `tables/<name>.jsonl`, `files/<storage id>`.

Every line of a table's file is one document in Convex's JSON encoding, exactly as
stored (so `_id` and `_creationTime` travel with it); `files/` holds the bytes of each
`_storage` document. The manifest is written last and counts what the zip holds, so a
truncated or edited export is caught on import.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.db import ids
from app.schema import SchemaDefinition
from app.schema.definition import TableDefinition
from app.values.validators import validator_from_json

FORMAT = "convect-export"
VERSION = 1
MANIFEST = "manifest.json"
SCHEMA = "schema.json"
TABLES_DIR = "tables/"
FILES_DIR = "files/"
ENV_ENTRY = "environment_variables.jsonl"  # only when exported with them
MAX_META_BYTES = 64 * 1024 * 1024


class ExportFormatError(ValueError):
    """The file is not a Convect export this version can read; nothing was imported."""


def table_entry(table: str) -> str:
    """The zip entry of a table's documents."""
    return f"{TABLES_DIR}{table}.jsonl"


def file_entry(storage_id: str) -> str:
    """The zip entry of a stored file's bytes."""
    return f"{FILES_DIR}{storage_id}"


@dataclass
class Manifest:
    """What an export holds."""

    tables: dict[str, int] = field(default_factory=dict)  # table -> documents
    files: int = 0
    file_bytes: int = 0
    exported_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The manifest.json object."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "exportedAt": self.exported_at,
            "tables": {name: {"documents": n} for name, n in sorted(self.tables.items())},
            "files": {"count": self.files, "bytes": self.file_bytes},
        }


def parse_line(line: bytes | str) -> Any:
    """Parse one document line (jsonb prints large numbers in full, beyond orjson's ints)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line, parse_int=float)


def _read_small(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ExportFormatError(f"the zip has no {name}: it is not a Convect export") from None
    if info.file_size > MAX_META_BYTES:
        raise ExportFormatError(f"{name} is too large ({info.file_size} bytes)")
    with zf.open(info) as f:
        return f.read(MAX_META_BYTES + 1)


def read_manifest(zf: zipfile.ZipFile) -> Manifest:
    """Parse and check manifest.json against the zip's entries."""
    try:
        raw = orjson.loads(_read_small(zf, MANIFEST))
    except orjson.JSONDecodeError as exc:
        raise ExportFormatError(f"{MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ExportFormatError(f"{MANIFEST} does not describe a Convect export")
    if raw.get("version") != VERSION:
        raise ExportFormatError(
            f"export format version {raw.get('version')!r} is not supported (this Convect "
            f"reads version {VERSION})"
        )
    tables = raw.get("tables")
    files = raw.get("files")
    if not isinstance(tables, dict) or not isinstance(files, dict):
        raise ExportFormatError(f"{MANIFEST} lacks its tables or files")
    manifest = Manifest(exported_at=float(raw.get("exportedAt") or 0))
    names = set(zf.namelist())
    for table, info in tables.items():
        try:
            ids.check_table_name(table, allow_system=True)
        except ValueError as exc:
            raise ExportFormatError(f"{MANIFEST} names an invalid table: {exc}") from None
        count = info.get("documents") if isinstance(info, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ExportFormatError(f"{MANIFEST}: table {table} has no document count")
        if table_entry(table) not in names:
            raise ExportFormatError(f"the zip lacks {table_entry(table)} (listed in {MANIFEST})")
        manifest.tables[table] = count
    count = files.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ExportFormatError(f"{MANIFEST}: the file count is missing")
    manifest.files = count
    manifest.file_bytes = int(files.get("bytes") or 0)
    stored = [n for n in names if n.startswith(FILES_DIR) and n != FILES_DIR]
    if len(stored) != count:
        raise ExportFormatError(f"{MANIFEST} counts {count} files but the zip holds {len(stored)}")
    for name in stored:
        if not ids.is_id_for(name[len(FILES_DIR) :], "_storage"):
            raise ExportFormatError(f"{name} is not named by a storage id")
    extra = [
        n
        for n in names
        if n.startswith(TABLES_DIR) and n[len(TABLES_DIR) : -len(".jsonl")] not in manifest.tables
    ]
    if extra:
        raise ExportFormatError(f"{extra[0]} is not listed in {MANIFEST}")
    return manifest


def read_schema(zf: zipfile.ZipFile) -> dict[str, Any] | None:
    """schema.json: the source deployment's schema description, or None."""
    try:
        raw = orjson.loads(_read_small(zf, SCHEMA))
    except orjson.JSONDecodeError as exc:
        raise ExportFormatError(f"{SCHEMA} is not valid JSON: {exc}") from None
    if raw is not None and not (isinstance(raw, dict) and isinstance(raw.get("tables"), dict)):
        raise ExportFormatError(f"{SCHEMA} is not a schema description")
    if raw is not None:
        try:
            schema_from_json(raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ExportFormatError(f"{SCHEMA} is not a valid schema: {exc}") from None
    return raw


def schema_from_json(data: dict[str, Any]) -> SchemaDefinition:
    """Rebuild a schema (validators and indexes) from its stored description."""
    tables: dict[str, TableDefinition] = {}
    for name, tdata in data["tables"].items():
        ids.check_table_name(name)
        validator = tdata.get("validator")
        table = TableDefinition(validator_from_json(validator) if validator is not None else None)
        for index, fields in (tdata.get("indexes") or {}).items():
            table.index(index, list(fields))
        for index, s in (tdata.get("searchIndexes") or {}).items():
            table.search_index(
                index, search_field=s["searchField"], filter_fields=s.get("filterFields", [])
            )
        for index, vi in (tdata.get("vectorIndexes") or {}).items():
            table.vector_index(
                index,
                vector_field=vi["vectorField"],
                dimensions=vi["dimensions"],
                filter_fields=vi.get("filterFields", []),
            )
        tables[name] = table
    return SchemaDefinition(tables, schema_validation=bool(data.get("schemaValidation", True)))
