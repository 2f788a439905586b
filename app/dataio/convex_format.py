"""Convex's snapshot export zip, which `convect export` writes and `convect import` reads.

Layout (crates/exports in get-convex/convex-backend): `README.md`,
`_tables/documents.jsonl` (`{"name", "id"}` of each table), `<table>/documents.jsonl`
(one document per line, Convex's export JSON), `<table>/generated_schema.jsonl`
(`"uniform"`), `_storage/documents.jsonl` (`{"_id", "_creationTime", "sha256" (base64),
"size", "contentType"}`) and `_storage/<id>[.ext]` (the bytes). Convect adds
`_convect/manifest.json` (counts, to catch a damaged zip) and `_convect/schema.json`
(its schema description); Convex ignores both. Ids map as `app.dataio.convex_ids` says.

Reading converts such a zip (or one table's CSV, JSON lines or JSON array) into the
zip the loader (`app.dataio.importer`) checks and loads in one transaction.
"""

from __future__ import annotations

import base64
import csv
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson

from app.dataio.convex_ids import IdMap, decode_convex_id
from app.dataio.convex_values import csv_cell, from_export_json
from app.dataio.documents import read_lines
from app.dataio.format import (
    ENV_ENTRY,
    MANIFEST,
    SCHEMA,
    ExportFormatError,
    Manifest,
    file_entry,
    table_entry,
)
from app.db import ids

README = """# Welcome to your Convex snapshot export!

This ZIP file contains a snapshot of the tables in your Convex deployment.

Documents for each table are listed as lines of JSON in
<table_name>/documents.jsonl files.

For details on the format and how to use this snapshot with npx convex import,
check out [the docs](https://docs.convex.dev/database/import-export/export).

(Written by Convect: `convect import` and `npx convex import` read it.)
"""
TABLES = "_tables/documents.jsonl"
STORAGE = "_storage"
CONVECT_MANIFEST = "_convect/manifest.json"
CONVECT_SCHEMA = "_convect/schema.json"
CONVECT_ENV = "_convect/environment_variables.jsonl"  # only with --include-env
UNIFORM = b'"uniform"\n'
_DOCUMENTS = re.compile(r"^([^/]+)/documents\.jsonl$")
_SCHEMA_FILE = re.compile(r"^([^/]+)/generated_schema\.jsonl$")
_STORAGE_FILE = re.compile(r"^_storage/([^/.]+)(?:\.[^/]+)?$")
TableFormat = Literal["csv", "jsonLines", "jsonArray"]


def documents_entry(table: str) -> str:
    """The zip entry of a table's documents."""
    return f"{table}/documents.jsonl"


def storage_metadata(doc: dict[str, Any], convex_id: str) -> dict[str, Any]:
    """A Convect `_storage` document as a line of Convex's `_storage/documents.jsonl`."""
    meta: dict[str, Any] = {
        "_id": convex_id,
        "_creationTime": doc["_creationTime"],
        "sha256": base64.b64encode(bytes.fromhex(doc["sha256"])).decode(),
        "size": int(doc["size"]),
    }
    if doc.get("contentType") is not None:
        meta["contentType"] = doc["contentType"]
    return meta


def is_convect_zip(zf: zipfile.ZipFile) -> bool:
    """True for the zip layout the loader reads (`manifest.json` at the top)."""
    return MANIFEST in zf.namelist()


class _Clock:
    """Creation times for documents that come without one: now, strictly increasing."""

    def __init__(self) -> None:
        self.last = 0.0

    def next(self) -> float:
        self.last = max(time.time() * 1000, self.last + 0.001)
        return self.last


def _lines(zf: zipfile.ZipFile, name: str) -> Iterator[tuple[int, Any]]:
    with zf.open(name) as f:
        for number, line in read_lines(f, name):
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ExportFormatError(f"{name}, line {number}: not valid JSON ({exc})") from None


def convex_to_convect(src: zipfile.ZipFile, dest: Path) -> None:
    """Rewrite Convex's snapshot zip `src` as the loader's zip at `dest`."""
    names = src.namelist()
    tables = sorted(
        m.group(1) for n in names if (m := _DOCUMENTS.match(n)) and m.group(1) != "_tables"
    )
    tables = [t for t in tables if t == STORAGE or not ids.is_system_table(t)]
    if not tables:
        raise ExportFormatError(
            "the zip has no manifest.json (of a Convect export) and no "
            "<table>/documents.jsonl (of a Convex snapshot export)"
        )
    for table in tables:
        try:
            ids.check_table_name(table, allow_system=True)
        except ValueError as exc:
            raise ExportFormatError(f"{documents_entry(table)}: {exc}") from None
    numbers: dict[str, int] = {}
    if TABLES in names:
        for number, row in _lines(src, TABLES):
            if not isinstance(row, dict) or not isinstance(row.get("name"), str):
                raise ExportFormatError(f"{TABLES}, line {number}: expected {{name, id}}")
            if isinstance(row.get("id"), int):
                numbers[row["name"]] = row["id"]
    for table in tables:  # learn (or check) each table's number from its first id
        for _, doc in _lines(src, documents_entry(table)):
            decoded = decode_convex_id(doc.get("_id")) if isinstance(doc, dict) else None
            if decoded is not None:
                numbers.setdefault(table, decoded[0])
            break
    id_map = IdMap({t: n for t, n in numbers.items() if t in tables})
    lossless = {m.group(1) for n in names if (m := _SCHEMA_FILE.match(n))}
    schema = src.read(CONVECT_SCHEMA) if CONVECT_SCHEMA in names else b"null"
    manifest = Manifest(exported_at=time.time() * 1000)
    clock = _Clock()
    storage_ids: dict[str, str] = {}  # Convex storage id -> Convect id
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        out.writestr(SCHEMA, schema)
        if CONVECT_ENV in names:
            out.writestr(ENV_ENTRY, src.read(CONVECT_ENV))
        for table in tables:
            lossless_table = table in lossless or table == STORAGE
            count = 0
            with out.open(table_entry(table), "w", force_zip64=True) as f:
                for number, doc in _lines(src, documents_entry(table)):
                    where = f"{documents_entry(table)}, line {number}"
                    converted = _document(doc, table, id_map, lossless_table, clock, where)
                    if table == STORAGE:
                        converted = _storage_document(doc, converted, where)
                        storage_ids[str(doc.get("_id"))] = converted["_id"]
                    f.write(orjson.dumps(converted) + b"\n")
                    count += 1
            manifest.tables[table] = count
        for name in names:
            match = _STORAGE_FILE.match(name)
            if match is None or name == documents_entry(STORAGE):
                continue
            convect_id = storage_ids.get(match.group(1))
            if convect_id is None:
                raise ExportFormatError(
                    f"{name} belongs to no document of _storage/documents.jsonl"
                )
            with src.open(name) as f, out.open(file_entry(convect_id), "w", force_zip64=True) as g:
                while chunk := f.read(1024 * 1024):
                    g.write(chunk)
                    manifest.file_bytes += len(chunk)
            manifest.files += 1
        out.writestr(MANIFEST, orjson.dumps(manifest.to_json()))
    if CONVECT_MANIFEST in names:
        _check_counts(orjson.loads(src.read(CONVECT_MANIFEST)), manifest)


def _check_counts(written: Any, found: Manifest) -> None:
    """A Convect export's own counts against what its zip holds (a damaged zip is refused)."""
    tables = written.get("tables") if isinstance(written, dict) else None
    files = written.get("files") if isinstance(written, dict) else None
    if not isinstance(tables, dict) or not isinstance(files, dict):
        raise ExportFormatError(f"{CONVECT_MANIFEST} lacks its tables or files")
    for table, info in tables.items():
        expected = info.get("documents") if isinstance(info, dict) else None
        if found.tables.get(table, 0) != expected:
            raise ExportFormatError(
                f"{documents_entry(table)} holds {found.tables.get(table, 0)} documents but "
                f"{CONVECT_MANIFEST} says {expected}; the export is damaged and nothing was "
                "imported"
            )
    if files.get("count") != found.files:
        raise ExportFormatError(
            f"the zip holds {found.files} stored files but {CONVECT_MANIFEST} says "
            f"{files.get('count')}; the export is damaged and nothing was imported"
        )


def _document(
    doc: Any, table: str, id_map: IdMap, lossless: bool, clock: _Clock, where: str
) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ExportFormatError(f"{where}: a document is a JSON object")
    raw_id = doc.get("_id")
    new_id = _convect_id(raw_id, table, id_map) if raw_id is not None else ids.new_id(table)
    if new_id is None:
        raise ExportFormatError(f"{where}: _id {raw_id!r} is not an id of table {table}")
    created = doc.get("_creationTime")
    if created is None:
        created = clock.next()
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise ExportFormatError(f"{where}: _creationTime must be a number")
    fields = {k: x for k, x in doc.items() if k not in ("_id", "_creationTime")}
    try:
        body = from_export_json(fields, lossless=lossless, ids=id_map.to_convect)
    except (ValueError, TypeError) as exc:
        raise ExportFormatError(f"{where}: {exc}") from None
    return {"_id": new_id, "_creationTime": float(created), **body}


def _convect_id(value: Any, table: str, id_map: IdMap) -> str | None:
    if ids.is_id_for(value, table):
        return str(value)
    decoded = decode_convex_id(value)
    if decoded is None:
        return None
    return ids.id_from_parts(decoded[1], table)


def _storage_document(doc: dict[str, Any], converted: dict[str, Any], where: str) -> dict[str, Any]:
    sha = doc.get("sha256")
    size = doc.get("size")
    if not isinstance(sha, str) or not isinstance(size, int | float):
        raise ExportFormatError(f"{where}: a _storage entry needs sha256 and size")
    try:
        digest = base64.b64decode(sha, validate=True).hex() if len(sha) != 64 else sha
    except ValueError:
        raise ExportFormatError(f"{where}: sha256 is neither base64 nor hex") from None
    out: dict[str, Any] = {
        "_id": converted["_id"],
        "_creationTime": converted["_creationTime"],
        "sha256": digest,
        "size": float(size),
    }
    if isinstance(doc.get("contentType"), str):
        out["contentType"] = doc["contentType"]
    return out


def table_file_to_convect(src: Path, dest: Path, table: str, fmt: TableFormat) -> None:
    """One table's CSV, JSON lines or JSON array as the loader's zip at `dest`."""
    try:
        ids.check_table_name(table)
    except ValueError as exc:
        raise ExportFormatError(str(exc)) from None
    id_map = IdMap({})
    clock = _Clock()
    count = 0
    manifest = Manifest(exported_at=time.time() * 1000)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        out.writestr(SCHEMA, b"null")
        with out.open(table_entry(table), "w", force_zip64=True) as f:
            for where, doc in _table_rows(src, fmt):
                converted = _document(doc, table, id_map, False, clock, where)
                f.write(orjson.dumps(converted) + b"\n")
                count += 1
        manifest.tables[table] = count
        out.writestr(MANIFEST, orjson.dumps(manifest.to_json()))


def _table_rows(src: Path, fmt: TableFormat) -> Iterator[tuple[str, Any]]:
    name = src.name
    if fmt == "jsonArray":
        try:
            rows = orjson.loads(src.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ExportFormatError(f"{name} is not valid JSON ({exc})") from None
        if not isinstance(rows, list):
            raise ExportFormatError(f"{name} must hold a JSON array of documents")
        for i, row in enumerate(rows):
            yield f"{name}, item {i + 1}", row
    elif fmt == "jsonLines":
        with src.open("rb") as f:
            for number, line in read_lines(f, name):
                if not line.strip():
                    continue
                try:
                    yield f"{name}, line {number}", orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ExportFormatError(
                        f"{name}, line {number}: not valid JSON ({exc})"
                    ) from None
    else:
        with src.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ExportFormatError(f"{name} has no header row")
            fields = [h.strip(" ") for h in header]
            for number, row in enumerate(reader, start=2):
                if len(row) != len(fields):
                    raise ExportFormatError(
                        f"{name}, line {number}: {len(row)} cells for {len(fields)} columns"
                    )
                yield (
                    f"{name}, line {number}",
                    {k: csv_cell(x) for k, x in zip(fields, row, strict=True)},
                )


__all__ = [
    "CONVECT_ENV",
    "CONVECT_MANIFEST",
    "CONVECT_SCHEMA",
    "README",
    "STORAGE",
    "TABLES",
    "UNIFORM",
    "TableFormat",
    "convex_to_convect",
    "documents_entry",
    "is_convect_zip",
    "storage_metadata",
    "table_file_to_convect",
]
