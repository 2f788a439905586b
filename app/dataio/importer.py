"""`convect import`: load an export zip into a deployment, in one transaction.

Everything is checked while it streams in (ids name their table, documents are valid
Convex values within the size limit and match the deployment's schema, files match
their `_storage` documents, counts match the manifest); any problem rolls the whole
import back, so a refused import changes nothing. Documents keep their ids and
creation times. Afterwards one commit-log row names every imported table and a NOTIFY
tells running servers to drop cached results and re-run subscriptions.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncpg
import orjson

from app.dataio.connect import connect, require_migrated
from app.dataio.convex_format import (
    TableFormat,
    convex_to_convect,
    is_convect_zip,
    table_file_to_convect,
)
from app.dataio.documents import LineTooLong, check_line, read_lines
from app.dataio.format import (
    ENV_ENTRY,
    ExportFormatError,
    Manifest,
    read_manifest,
    read_schema,
    schema_from_json,
    table_entry,
)
from app.dataio.import_files import ImportFiles, ImportRefused
from app.dataio.progress import Bars
from app.db import ids
from app.db.catalog import create_table_sql
from app.db.deploy import DEPLOY_LOCK
from app.db.sql import create_index_sql, table_ref
from app.db.vector import VECTOR_PREFIX, doc_vector
from app.envvars.store import CHANNEL as ENV_CHANNEL
from app.envvars.store import MAX_VARS, EnvVarError, check_name, check_value
from app.schema import SchemaDefinition
from app.schema.definition import TableDefinition, VectorIndex
from app.storage.s3 import S3Blobs

Mode = Literal["empty", "replace", "append"]
BATCH_ROWS = 2000
BATCH_BYTES = 8 * 1024 * 1024
INDEX_BUILD_MEMORY = "256MB"
STORAGE = "_storage"
NOTIFY_CHANNEL = "convect_commits"


@dataclass
class ImportSummary:
    """What an import did."""

    tables: dict[str, int] = field(default_factory=dict)
    created_tables: list[str] = field(default_factory=list)
    files: int = 0
    file_bytes: int = 0
    schema_written: bool = False
    env_vars: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def documents(self) -> int:
        """Documents imported into all tables."""
        return sum(self.tables.values())


async def import_deployment(
    url: str,
    src: str | Path,
    *,
    mode: Mode = "empty",
    bars: Bars | None = None,
    table: str | None = None,
    table_format: TableFormat | None = None,
    bucket: S3Blobs | None = None,
    files_to_bucket: bool = False,
) -> ImportSummary:
    """Import `src` into the deployment at `url`: an export zip (Convex's snapshot
    layout, or Convect's earlier one), or with `table` one table's CSV, JSON lines or
    JSON array (`table_format`).

    `mode`: "empty" refuses tables that already hold documents, "replace" empties the
    tables the import names first, "append" adds to them and refuses an id that exists.
    Files go into PostgreSQL chunks, or with `files_to_bucket` into `bucket` (the
    deployment's open S3 backend; also where replaced files' objects are deleted).
    """
    started = time.monotonic()
    original = src
    with tempfile.TemporaryDirectory(prefix="convect-import-") as tmp:
        converted = Path(tmp) / "import.zip"
        if table is not None:
            await asyncio.to_thread(
                table_file_to_convect, Path(src), converted, table, table_format or "jsonLines"
            )
            src = converted
        else:
            try:
                with zipfile.ZipFile(src) as zf:
                    if not is_convect_zip(zf):
                        await asyncio.to_thread(convex_to_convect, zf, converted)
                        src = converted
            except (zipfile.BadZipFile, OSError) as exc:
                raise ExportFormatError(f"{src} is not a readable zip file: {exc}") from None
        try:
            summary = await _load_zip(url, src, mode, bars, bucket, files_to_bucket)
        except (ImportRefused, ExportFormatError) as exc:
            if src != converted:
                raise
            # Name the entry the user's file has, not the converted zip's.
            text = _ENTRY.sub(
                lambda m: f"{m.group(1)}/documents.jsonl" if table is None else Path(original).name,
                str(exc),
            )
            raise type(exc)(text) from None
    summary.seconds = time.monotonic() - started
    return summary


_ENTRY = re.compile(r"\btables/([^/\s,]+)\.jsonl")


async def _load_zip(
    url: str,
    src: str | Path,
    mode: Mode,
    bars: Bars | None,
    bucket: S3Blobs | None,
    files_to_bucket: bool,
) -> ImportSummary:
    """Check and load a zip in the loader's layout, in one transaction."""
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExportFormatError(f"{src} is not a readable zip file: {exc}") from None
    with zf:
        manifest = read_manifest(zf)
        exported_schema = read_schema(zf)
        conn = await connect(url)
        try:
            await require_migrated(conn)
            bars = bars or Bars(False)
            files = ImportFiles(conn, zf, bars, bucket, files_to_bucket)
            loader = _Loader(conn, zf, manifest, exported_schema, mode, bars, files)
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", DEPLOY_LOCK)
                    await loader.run()
            except BaseException:
                await asyncio.shield(files.rolled_back())
                raise
            await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
            await files.committed()
        finally:
            await conn.close()
    return loader.summary


class _Loader:
    """One import: checks, table creation, documents, files, schema and commit log."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        zf: zipfile.ZipFile,
        manifest: Manifest,
        exported_schema: dict[str, Any] | None,
        mode: Mode,
        bars: Bars,
        files: ImportFiles,
    ) -> None:
        self.conn = conn
        self.zf = zf
        self.manifest = manifest
        self.exported_schema = exported_schema
        self.mode = mode
        self.bars = bars
        self.summary = ImportSummary()
        self.schema: SchemaDefinition | None = None  # what imported documents must match
        self.storage_ids: set[str] = set()
        self.files = files

    async def run(self) -> None:
        """Do the whole import inside the caller's transaction."""
        conn = self.conn
        tables = sorted(self.manifest.tables)
        existing = {
            r["name"]: r["number"]
            for r in await conn.fetch("SELECT name, number FROM _convect_tables")
        }
        target_schema = await conn.fetchval("SELECT schema::text FROM _convect_schema WHERE id = 1")
        governing = orjson.loads(target_schema) if target_schema else self.exported_schema
        try:
            self.schema = schema_from_json(governing) if governing else None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ImportRefused(
                f"this deployment's schema cannot be read ({exc}); run `convect deploy` first"
            ) from None
        exported = schema_from_json(self.exported_schema) if self.exported_schema else None
        await self._check(tables, existing)
        for table in tables:
            if table not in existing:
                await self._create(table, self._definition(table, exported))
        if self.mode == "replace":
            if STORAGE in tables:
                await self.files.before_replace()
            await conn.execute("TRUNCATE " + ", ".join(table_ref(t) for t in tables))
        await conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
        for table in tables:
            # A table nobody can read meanwhile (new, or truncated: locked until commit)
            # gets its secondary indexes built once after loading: far faster than per row.
            deferred = (
                await self._drop_indexes(table)
                if self.mode == "replace" or table in self.summary.created_tables
                else []
            )
            self.summary.tables[table] = await self._load_table(table)
            for _name, definition in deferred:
                await conn.execute(definition)
        await self._load_env()
        # Files last: once objects are written to a bucket, only the commit is left to fail.
        await self.files.load(self.manifest, self.storage_ids)
        self.summary.files = self.files.files
        self.summary.file_bytes = self.files.file_bytes
        if target_schema is None and self.exported_schema is not None:
            await conn.execute(
                "INSERT INTO _convect_schema (id, schema) VALUES (1, $1::jsonb)",
                orjson.dumps(self.exported_schema).decode(),
            )
            self.summary.schema_written = True
        elif (
            target_schema is not None
            and self.exported_schema is not None
            and orjson.loads(target_schema) != self.exported_schema
        ):
            self.summary.notes.append(
                "the export's schema differs from this deployment's; the deployment's schema "
                "was kept and the documents were checked against it"
            )
        await conn.execute(
            "INSERT INTO _convect_commits (ts, writes) VALUES (nextval('_convect_ts'), $1::jsonb)",
            orjson.dumps([[t, None, None, None] for t in tables]).decode(),
        )

    def _definition(self, table: str, exported: SchemaDefinition | None) -> TableDefinition | None:
        for schema in (self.schema, exported):
            if schema is not None and table in schema.tables:
                return schema.tables[table]
        return None

    async def _check(self, tables: list[str], existing: dict[str, int]) -> None:
        problems: list[str] = []
        for table in tables:
            number = ids.table_number(table)
            clash = [n for n, num in existing.items() if num == number and n != table]
            if clash:
                problems.append(f"table {table} clashes with the existing table {clash[0]}")
            if (
                self.schema is not None
                and self.schema.schema_validation
                and not ids.is_system_table(table)
                and table not in self.schema.tables
                and self.manifest.tables[table] > 0
            ):
                problems.append(
                    f"table {table} is not in the deployment's schema (add it to schema.py "
                    "and deploy, or leave it out of the export)"
                )
            if self.mode == "empty" and table in existing:
                count = await self.conn.fetchval(
                    f"SELECT count(*) FROM (SELECT 1 FROM {table_ref(table)} LIMIT 1001) s"
                )
                if count:
                    shown = "more than 1,000" if count > 1000 else str(count)
                    problems.append(f"table {table} already holds {shown} documents")
        if problems:
            hint = (
                "\nPass --replace to empty the exported tables first, or --append to add to them."
                if self.mode == "empty"
                else ""
            )
            raise ImportRefused(
                "Import refused; nothing was changed:\n"
                + "\n".join(f"  - {p}" for p in problems)
                + hint
            )

    async def _create(self, table: str, definition: TableDefinition | None) -> None:
        number = ids.table_number(table)
        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", number)
        for stmt in create_table_sql(table, definition):
            await self.conn.execute(stmt)
        if definition is not None:
            for name, fields in sorted(definition.indexes.items()):
                await self.conn.execute(create_index_sql(table, name, fields, concurrently=False))
        await self.conn.execute(
            "INSERT INTO _convect_tables (name, number) VALUES ($1, $2)", table, number
        )
        self.summary.created_tables.append(table)

    async def _vector_columns(self, table: str) -> list[tuple[str, VectorIndex]]:
        rows = await self.conn.fetch(
            "SELECT a.attname, col_description(a.attrelid, a.attnum) AS comment "
            "FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 "
            "AND NOT a.attisdropped AND a.attname LIKE 'vec\\_\\_%' ORDER BY a.attname",
            table_ref(table),
        )
        out = []
        for r in rows:
            spec = orjson.loads(r["comment"].removeprefix("convect:")) if r["comment"] else {}
            if "vectorField" not in spec:
                continue
            out.append((r["attname"], VectorIndex(spec["vectorField"], int(spec["dimensions"]))))
        return out

    async def _drop_indexes(self, table: str) -> list[tuple[str, str]]:
        """Drop the table's indexes but its primary key; return (name, CREATE statement)s."""
        rows = await self.conn.fetch(
            "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = $1::regclass AND NOT i.indisprimary ORDER BY c.relname",
            table_ref(table),
        )
        for r in rows:
            await self.conn.execute(f'DROP INDEX docs."{r["name"]}"')
        return [(r["name"], r["def"]) for r in rows]

    async def _load_table(self, table: str) -> int:
        entry = table_entry(table)
        expected = self.manifest.tables[table]
        vectors = await self._vector_columns(table)
        tdef = self.schema.tables.get(table) if self.schema is not None else None
        validator = (
            tdef.validator
            if tdef is not None and self.schema is not None and self.schema.schema_validation
            else None
        )
        bar = self.bars.add(f"import {table}", expected)
        count = 0
        with self.zf.open(entry) as f:
            lines = read_lines(f, entry)

            def parse() -> list[tuple[Any, ...]]:
                return self._parse_batch(table, entry, lines, validator, vectors)

            # Parse the next batch in a thread while PostgreSQL takes the last one.
            pending = asyncio.ensure_future(asyncio.to_thread(parse))
            try:
                while batch := await pending:
                    pending = asyncio.ensure_future(asyncio.to_thread(parse))
                    await self._insert(table, batch, vectors)
                    count += len(batch)
                    bar.advance(len(batch))
            finally:
                if not pending.done():
                    await asyncio.wait([pending])
                if not pending.cancelled():
                    pending.exception()  # retrieved: the first error is the one raised
        if count != expected:
            raise ExportFormatError(
                f"{entry} holds {count} documents but the manifest says {expected}; "
                "the export is damaged and nothing was imported"
            )
        bar.finish()
        return count

    def _parse_batch(
        self,
        table: str,
        entry: str,
        lines: Iterator[tuple[int, bytes]],
        validator: Any,
        vectors: list[tuple[str, VectorIndex]],
    ) -> list[tuple[Any, ...]]:
        """The next batch of checked rows (an empty list at the end)."""
        batch: list[tuple[Any, ...]] = []
        size = 0
        try:
            for number, line in lines:
                try:
                    batch.append(self._record(table, line, validator, vectors))
                except (ValueError, TypeError) as exc:
                    raise ImportRefused(
                        f"{entry}, line {number}: {exc}; nothing was imported"
                    ) from None
                size += len(line)
                if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
                    break
        except LineTooLong as exc:
            raise ImportRefused(f"{exc}; nothing was imported") from None
        return batch

    def _record(
        self,
        table: str,
        line: bytes,
        validator: Any,
        vectors: list[tuple[str, VectorIndex]],
    ) -> tuple[Any, ...]:
        doc_id, created, doc = check_line(table, line, validator)
        if table == STORAGE:
            self.storage_ids.add(doc_id)
        extra = [doc_vector(doc, table, col[len(VECTOR_PREFIX) :], vi) for col, vi in vectors]
        return (doc_id, created, line.decode(), *extra)

    async def _insert(
        self, table: str, batch: list[tuple[Any, ...]], vectors: list[tuple[str, VectorIndex]]
    ) -> None:
        try:
            if not vectors:
                await self.conn.copy_records_to_table(
                    table,
                    schema_name="docs",
                    columns=["id", "creation_time", "doc"],
                    records=batch,
                )
                return
            cols = ", ".join(f'"{c}"' for c, _ in vectors)
            casts = ", ".join(f"v{i}::vector" for i in range(len(vectors)))
            names = ", ".join(f"v{i}" for i in range(len(vectors)))
            params = ", ".join(f"${i + 4}::text[]" for i in range(len(vectors)))
            await self.conn.execute(
                f"INSERT INTO {table_ref(table)} (id, creation_time, doc, {cols}) "
                f"SELECT i, c, d::jsonb, {casts} FROM unnest($1::text[], $2::float8[], "
                f"$3::text[], {params}) AS u(i, c, d, {names})",
                *([r[k] for r in batch] for k in range(3 + len(vectors))),
            )
        except asyncpg.UniqueViolationError as exc:
            detail = getattr(exc, "detail", "") or ""
            raise ImportRefused(
                f"table {table}: a document id is already taken ({detail.strip()}); "
                "--append never overwrites documents, and nothing was imported"
            ) from None

    async def _load_env(self) -> None:
        """The export's environment variables, if it was made with them (set or replaced
        by name; every process sees them after the commit)."""
        if ENV_ENTRY not in self.zf.namelist():
            return
        with self.zf.open(ENV_ENTRY) as f:
            for number, line in read_lines(f, ENV_ENTRY):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                    name = check_name(row.get("name") if isinstance(row, dict) else None)
                    value = check_value(name, row.get("value"))
                except (orjson.JSONDecodeError, EnvVarError) as exc:
                    raise ImportRefused(
                        f"{ENV_ENTRY}, line {number}: {exc}; nothing was imported"
                    ) from None
                await self.conn.execute(
                    "INSERT INTO _convect_env_vars (name, value) VALUES ($1, $2) ON CONFLICT "
                    "(name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                    name,
                    value,
                )
                self.summary.env_vars += 1
        count = await self.conn.fetchval("SELECT count(*) FROM _convect_env_vars")
        if count > MAX_VARS:
            raise ImportRefused(
                f"the import would make {count} environment variables (at most {MAX_VARS}); "
                "nothing was imported"
            )
        await self.conn.execute(f"NOTIFY {ENV_CHANNEL}")  # delivered at the commit


__all__ = ["ImportRefused", "ImportSummary", "Mode", "import_deployment"]
