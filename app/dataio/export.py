"""`convect export`: every table, the schema and the stored files, streamed into a zip.

The zip is Convex's snapshot export (`app.dataio.convex_format`): `npx convex import`
and `convect import` both read it. Documents are converted to Convex's export JSON and
their ids to Convex ids (`app.dataio.convex_ids`); `_scheduled_functions` is left out,
as Convex leaves out its system tables.

One REPEATABLE READ transaction reads everything, so the export is one consistent
snapshot. Documents are fetched through a cursor in batches and written as they come;
file bytes are copied chunk by chunk. Memory stays flat whatever the export's size.
"""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import orjson

from app.dataio.connect import connect, require_migrated
from app.dataio.convex_format import (
    CONVECT_ENV,
    CONVECT_MANIFEST,
    CONVECT_SCHEMA,
    README,
    TABLES,
    UNIFORM,
    documents_entry,
    storage_metadata,
)
from app.dataio.convex_ids import IdMap
from app.dataio.convex_values import to_export_json
from app.dataio.format import Manifest, parse_line
from app.dataio.progress import Bars
from app.db import ids
from app.db.sql import table_ref

BATCH_ROWS = 2000
BLOB_BATCH = 8  # chunks of at most 1 MiB each
STORAGE = "_storage"
_FILES_SQL = (
    "SELECT s.id, s.doc ->> 'sha256' AS sha256, (s.doc ->> 'size')::float8 AS size, "
    'b.data FROM docs."_storage" s LEFT JOIN _convect_blobs b ON b.storage_id = s.id '
    "ORDER BY s.id, b.seq"
)


class ExportError(RuntimeError):
    """The deployment's data cannot be exported as it is (nothing was written)."""


@dataclass
class ExportSummary:
    """What an export wrote."""

    path: Path
    tables: dict[str, int] = field(default_factory=dict)
    files: int = 0
    file_bytes: int = 0
    seconds: float = 0.0
    env_vars: int = 0

    @property
    def documents(self) -> int:
        """Documents in all tables."""
        return sum(self.tables.values())


async def export_deployment(
    url: str,
    dest: str | Path,
    *,
    bars: Bars | None = None,
    include_files: bool = True,
    include_env: bool = False,
) -> ExportSummary:
    """Write the deployment at `url` to the zip `dest` (replaced only once complete);
    without `include_files` the `_storage` table and its files are left out (as
    `npx convex export` without `--include-file-storage` does). The environment
    variables (secrets, often) are written only with `include_env`."""
    dest = Path(dest)
    partial = dest.with_name(f".{dest.name}.partial")
    started = time.monotonic()
    env_vars = 0
    conn = await connect(url)
    try:
        await require_migrated(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            with zipfile.ZipFile(
                partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
            ) as zf:
                manifest = await _write(conn, zf, bars or Bars(enabled=False), include_files)
                if include_env:
                    rows = await conn.fetch(
                        "SELECT name, value FROM _convect_env_vars ORDER BY name"
                    )
                    zf.writestr(CONVECT_ENV, b"".join(orjson.dumps(dict(r)) + b"\n" for r in rows))
                    env_vars = len(rows)
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        await conn.close()
    return ExportSummary(
        dest,
        manifest.tables,
        manifest.files,
        manifest.file_bytes,
        time.monotonic() - started,
        env_vars,
    )


async def _write(
    conn: asyncpg.Connection, zf: zipfile.ZipFile, bars: Bars, include_files: bool
) -> Manifest:
    manifest = Manifest(exported_at=time.time() * 1000)
    zf.writestr("README.md", README)
    schema = await conn.fetchval("SELECT schema::text FROM _convect_schema WHERE id = 1")
    zf.writestr(CONVECT_SCHEMA, schema or "null")
    tables = [r["name"] for r in await conn.fetch("SELECT name FROM _convect_tables ORDER BY name")]
    tables = [t for t in tables if (t == STORAGE and include_files) or not ids.is_system_table(t)]
    id_map = IdMap.for_tables(tables)
    zf.writestr(
        TABLES,
        b"".join(
            orjson.dumps({"name": t, "id": id_map.numbers[t]}) + b"\n"
            for t in tables
            if t != STORAGE
        ),
    )
    for table in tables:
        manifest.tables[table] = await _write_table(conn, zf, table, bars, id_map)
    if STORAGE in tables:
        await _write_files(conn, zf, manifest, bars, id_map)
    zf.writestr(CONVECT_MANIFEST, orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2))
    return manifest


async def _write_table(
    conn: asyncpg.Connection, zf: zipfile.ZipFile, table: str, bars: Bars, id_map: IdMap
) -> int:
    ref = table_ref(table)
    total = await conn.fetchval(f"SELECT count(*) FROM {ref}") if bars.enabled else None
    bar = bars.add(f"export {table}", total)
    written = 0
    cursor = await conn.cursor(f"SELECT doc::text FROM {ref} ORDER BY creation_time, id")
    with zf.open(_entry(documents_entry(table)), "w", force_zip64=True) as out:
        while rows := await cursor.fetch(BATCH_ROWS):
            out.write(b"".join(_line(table, r[0], id_map) for r in rows))
            written += len(rows)
            bar.advance(len(rows))
    if table != STORAGE:
        zf.writestr(_entry(f"{table}/generated_schema.jsonl"), UNIFORM)
    bar.finish()
    return written


def _line(table: str, text: str, id_map: IdMap) -> bytes:
    """One stored document as a line of Convex's export."""
    doc = parse_line(text)
    if table == STORAGE:
        out = storage_metadata(doc, id_map.to_convex(doc["_id"]) or doc["_id"])
    else:
        out = to_export_json(doc, id_map.to_convex)
    return orjson.dumps(out) + b"\n"


def _entry(name: str, compress_type: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = compress_type
    if compress_type == zipfile.ZIP_DEFLATED:
        info._compresslevel = 1  # type: ignore[attr-defined]  # (public in 3.13)
    return info


class _FileCopy:
    """Writes one stored file's bytes into the zip and checks them against `_storage`."""

    def __init__(
        self, zf: zipfile.ZipFile, storage_id: str, sha256: str | None, size: float, entry: str
    ) -> None:
        self.storage_id = storage_id
        self.expected = (sha256, size)
        # Stored, not deflated: files are mostly compressed already.
        self.out = zf.open(_entry(entry, zipfile.ZIP_STORED), "w", force_zip64=True)
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append a chunk of the file."""
        self.out.write(data)
        self.digest.update(data)
        self.size += len(data)

    def close(self) -> int:
        """Finish the entry; return its size (ExportError if the bytes are not the file's)."""
        self.out.close()
        sha256, size = self.expected
        if self.digest.hexdigest() != sha256 or self.size != size:
            raise ExportError(
                f"the stored bytes of file {self.storage_id} ({self.size} bytes) do not match "
                f"its _storage document (size {size:.0f}, sha256 {sha256}); nothing was exported"
            )
        return self.size


async def _write_files(
    conn: asyncpg.Connection, zf: zipfile.ZipFile, manifest: Manifest, bars: Bars, id_map: IdMap
) -> None:
    total = (
        await conn.fetchval(
            "SELECT coalesce(sum((doc ->> 'size')::float8), 0) FROM docs.\"_storage\""
        )
        if bars.enabled
        else None
    )
    bar = bars.add("export files", total, unit="bytes")
    cursor = await conn.cursor(_FILES_SQL)
    copy: _FileCopy | None = None
    while rows := await cursor.fetch(BLOB_BATCH):
        for row in rows:
            if copy is None or row["id"] != copy.storage_id:
                if copy is not None:
                    manifest.file_bytes += copy.close()
                    manifest.files += 1
                entry = f"{STORAGE}/{id_map.to_convex(row['id']) or row['id']}"
                copy = _FileCopy(zf, row["id"], row["sha256"], float(row["size"] or 0), entry)
            if row["data"] is not None:
                copy.write(row["data"])
                bar.advance(len(row["data"]))
    if copy is not None:
        manifest.file_bytes += copy.close()
        manifest.files += 1
    bar.finish()
