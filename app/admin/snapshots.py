"""Imports and exports as Convex's admin API runs them (`npx convex import` / `export`).

An import is uploaded in parts (kept in `_convect_import_parts`, so any API process may
take any part), then run when the upload finishes: the file goes through the one
import path (`app.dataio.importer`) and its outcome is recorded in `_convect_snapshots`,
where `_system/cli/queryImport` reads it. An export is written by the one export path
into the data folder of the API process asked for it and recorded the same way
(`_system/cli/exports:getLatest`); the zip is downloaded from that process.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson

from app.dataio.connect import DatabaseUnreachable, NotMigrated
from app.dataio.convex_format import TableFormat
from app.dataio.export import ExportError, export_deployment
from app.dataio.format import ExportFormatError
from app.dataio.importer import ImportRefused, Mode, import_deployment
from app.storage.configured import bucket_of, s3_primary
from app.storage.s3 import S3Blobs
from app.storage.service import StorageService

if TYPE_CHECKING:
    from app.engine import Engine

MODES: dict[str, Mode] = {"requireEmpty": "empty", "append": "append", "replace": "replace"}
FORMATS = ("csv", "jsonLines", "jsonArray", "zip")
KEEP_EXPORTS = 3  # finished export zips kept in the data folder
_FAILURES = (DatabaseUnreachable, NotMigrated, ExportFormatError, ImportRefused, ExportError)


class SnapshotError(ValueError):
    """A request the admin API refuses (bad token, arguments or state); nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Snapshots:
    """Uploads, imports and exports of one deployment."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._export_lock = asyncio.Lock()

    @property
    def url(self) -> str:
        """The deployment's database."""
        assert self.engine.settings.database_url
        return self.engine.settings.database_url

    def _bucket(self) -> tuple[S3Blobs | None, bool]:
        """The deployment's S3 bucket (if any) and whether new files go there."""
        storage = self.engine.storage
        if not isinstance(storage, StorageService):
            return None, False
        return bucket_of(storage.backend), s3_primary(storage.backend) is not None

    @property
    def folder(self) -> Path:
        """Where this process keeps export zips."""
        return self.engine.settings.data_path / "exports"

    # ------------------------------------------------------------- imports

    def start_upload(self) -> str:
        """A new upload token."""
        return secrets.token_urlsafe(24)

    async def upload_part(self, token: str, part: int, data: bytes) -> None:
        """Keep one part of an upload (the total is bounded by CONVECT_MAX_UPLOAD_BYTES)."""
        limit = self.engine.settings.max_upload_bytes
        async with self.engine.connection() as conn:
            stored = await conn.fetchval(
                "SELECT coalesce(sum(length(data)), 0) FROM _convect_import_parts WHERE token = $1",
                token,
            )
            if int(stored) + len(data) > limit:
                raise SnapshotError(
                    "ImportTooLarge", f"The upload exceeds {limit} bytes (CONVECT_MAX_UPLOAD_BYTES)"
                )
            await conn.execute(
                "INSERT INTO _convect_import_parts (token, part, data) VALUES ($1, $2, $3) "
                "ON CONFLICT (token, part) DO UPDATE SET data = EXCLUDED.data",
                token,
                part,
                data,
            )

    async def finish_upload(self, token: str, args: Any) -> str:
        """Run the uploaded import; return its id (its outcome: `get_import`)."""
        mode, table, fmt = _import_args(args)
        import_id = secrets.token_hex(16)
        folder = self.engine.settings.data_path / "imports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{import_id}.upload"
        try:
            async with self.engine.connection() as conn:
                parts = await conn.fetch(
                    "SELECT data FROM _convect_import_parts WHERE token = $1 ORDER BY part", token
                )
                await conn.execute(
                    "DELETE FROM _convect_import_parts WHERE token = $1 "
                    "OR created_at < now() - interval '1 day'",  # and abandoned uploads
                    token,
                )
            if not parts:
                raise SnapshotError("InvalidUploadToken", "No parts were uploaded for this token")
            with path.open("wb") as f:
                for row in parts:
                    f.write(row["data"])
            state: dict[str, Any]
            bucket, to_bucket = self._bucket()
            try:
                summary = await import_deployment(
                    self.url,
                    path,
                    mode=mode,
                    table=table,
                    table_format=None if fmt == "zip" else cast(TableFormat, fmt),
                    bucket=bucket,
                    files_to_bucket=to_bucket,
                )
            except _FAILURES as exc:
                state = {"state": "failed", "error_message": str(exc)}
            else:
                state = {
                    "state": "completed",
                    "num_rows_written": summary.documents,
                    "checkpoint_messages": [],
                }
        finally:
            path.unlink(missing_ok=True)
        await self._record(import_id, "import", state)
        if state["state"] == "completed":
            await self.engine.catalog.load()
        return import_id

    # ------------------------------------------------------------- exports

    async def request_export(self, include_storage: bool) -> int:
        """Write an export zip now; return its timestamp (SnapshotError if one is running)."""
        if self._export_lock.locked():
            raise SnapshotError("ExportInProgress", "An export is already running")
        async with self._export_lock:
            ts = time.time_ns()
            self.folder.mkdir(parents=True, exist_ok=True)
            dest = self.folder / f"snapshot_{ts}.zip"
            started = time.time() * 1000
            try:
                await export_deployment(
                    self.url, dest, include_files=include_storage, objects=self._bucket()[0]
                )
            except _FAILURES as exc:
                state: dict[str, Any] = {"state": "failed", "error_message": str(exc)}
            else:
                state = {"state": "completed", "start_ts": ts, "complete_ts": time.time_ns()}
            state["requestor"] = "snapshotExport"
            state["include_storage"] = include_storage
            await self._record(str(ts), "export", state, created_ms=started)
            self._prune()
            return ts

    def export_path(self, ts: str) -> Path | None:
        """The zip of export `ts`, if this process holds it."""
        if not ts.isdigit():
            return None
        path = self.folder / f"snapshot_{ts}.zip"
        return path if path.is_file() else None

    def _prune(self) -> None:
        zips = sorted(self.folder.glob("snapshot_*.zip"), key=lambda p: p.stat().st_mtime)
        for old in zips[:-KEEP_EXPORTS]:
            old.unlink(missing_ok=True)

    # ------------------------------------------------------------- records

    async def _record(
        self, snapshot_id: str, kind: str, state: dict[str, Any], created_ms: float | None = None
    ) -> None:
        async with self.engine.connection() as conn:
            await conn.execute(
                "INSERT INTO _convect_snapshots (id, kind, created_ms, state) "
                "VALUES ($1, $2, $3, $4::jsonb)",
                snapshot_id,
                kind,
                created_ms if created_ms is not None else time.time() * 1000,
                orjson.dumps(state).decode(),
            )
        if self.engine.hub is not None:  # live `queryImport`/`getLatest` read this table
            self.engine.hub.reload()


def _import_args(args: Any) -> tuple[Mode, str | None, str]:
    if not isinstance(args, dict):
        raise SnapshotError("InvalidImport", "`import` must be an object")
    mode_name = args.get("mode", "requireEmpty")
    if mode_name == "replaceAll":
        raise SnapshotError(
            "InvalidImport",
            "Convect does not support --replace-all; use --replace (empties the imported "
            "tables) or import into an empty deployment",
        )
    if mode_name not in MODES:
        raise SnapshotError("InvalidImport", f"unknown import mode {mode_name!r}")
    fmt = args.get("format", "zip")
    if fmt not in FORMATS:
        raise SnapshotError("InvalidImport", f"unknown import format {fmt!r}")
    table = args.get("tableName")
    if fmt != "zip" and not isinstance(table, str):
        raise SnapshotError("InvalidImport", f"a {fmt} import needs a table name")
    return MODES[mode_name], table if fmt != "zip" else None, fmt


async def snapshot_documents(engine: Engine, kind: str, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` imports or exports as Convex's system documents."""
    rows = await engine.pool.fetch(
        "SELECT id, created_ms, state::text FROM _convect_snapshots WHERE kind = $1 "
        "ORDER BY created_ms DESC LIMIT $2",
        kind,
        limit,
    )
    return [_document(r["id"], r["created_ms"], orjson.loads(r["state"]), kind) for r in rows]


async def snapshot_document(engine: Engine, snapshot_id: str) -> dict[str, Any] | None:
    """One import or export as Convex's system document."""
    row = await engine.pool.fetchrow(
        "SELECT id, kind, created_ms, state::text FROM _convect_snapshots WHERE id = $1",
        snapshot_id,
    )
    if row is None:
        return None
    return _document(row["id"], row["created_ms"], orjson.loads(row["state"]), row["kind"])


def _document(snapshot_id: str, created: float, state: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "import":
        return {"_id": snapshot_id, "_creationTime": created, "state": state}
    return {"_id": snapshot_id, "_creationTime": created, **state}


__all__ = ["SnapshotError", "Snapshots", "snapshot_document", "snapshot_documents"]
