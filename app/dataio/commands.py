"""The bodies of `convect export | import | data | indexes | run --watch | logs`: settings
in, text out."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, Literal

import asyncpg

from app import embedded
from app.dataio.browse import UnknownTable, documents, table_counts
from app.dataio.connect import DatabaseUnreachable, NotMigrated, check_database
from app.dataio.convex_format import TableFormat
from app.dataio.export import ExportError, export_deployment
from app.dataio.format import ExportFormatError
from app.dataio.importer import ImportRefused, Mode, import_deployment
from app.dataio.logs import LogsError, stream_logs
from app.dataio.progress import Bars
from app.dataio.watch import Watcher, WatchError
from app.db import index_builds, migrate
from app.settings import Settings
from app.storage.configured import opened_bucket
from app.storage.errors import StorageError
from app.storage.migrate import MigrateSummary, Migration, Target

_EXPECTED = (
    DatabaseUnreachable,
    NotMigrated,
    ExportError,
    ExportFormatError,
    ImportRefused,
    UnknownTable,
    WatchError,
    LogsError,
)


class CommandError(Exception):
    """A command failed in a way the user can act on; the message says how."""


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except _EXPECTED as exc:
        raise CommandError(str(exc)) from None


def database_url(settings: Settings) -> str:
    """The deployment's database URL (embedded servers started if needed), checked to answer."""
    try:
        url = embedded.postgres_url(settings)
    except Exception as exc:
        raise CommandError(f"could not start the embedded PostgreSQL: {exc}") from None
    _run(check_database(url))
    return url


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _size(n: float) -> str:
    from rich.filesize import decimal

    return decimal(int(n))


async def _export(
    settings: Settings, url: str, dest: str, bars: Bars, include_files: bool, include_env: bool
) -> Any:
    """Export, reading the files in the S3 bucket too when one is configured."""
    async with opened_bucket(settings) as bucket:
        return await export_deployment(
            url, dest, bars=bars, include_files=include_files, include_env=include_env,
            objects=bucket,
        )  # fmt: skip


async def _import(
    settings: Settings,
    url: str,
    src: str,
    mode: Mode,
    bars: Bars,
    table: str | None,
    table_format: TableFormat | None,
) -> Any:
    """Import, writing files where the deployment keeps them (`CONVECT_STORAGE`)."""
    async with opened_bucket(settings) as bucket:
        return await import_deployment(
            url, src, mode=mode, bars=bars, table=table, table_format=table_format,
            bucket=bucket, files_to_bucket=settings.storage == "s3",
        )  # fmt: skip


def export_command(
    settings: Settings, dest: str, include_files: bool = True, include_env: bool = False
) -> None:
    """`convect export FILE [--no-files] [--include-env]`."""
    url = database_url(settings)
    with Bars() as bars:
        summary = _run(_export(settings, url, dest, bars, include_files, include_env))
    env = f", {_count(summary.env_vars, 'environment variable')}" if include_env else ""
    _say(
        f"exported {_count(len(summary.tables), 'table')}, "
        f"{_count(summary.documents, 'document')}{env} and {_count(summary.files, 'file')} "
        f"({_size(summary.file_bytes)}) to {dest} in "
        f"{summary.seconds:.1f} s ({_size(os.path.getsize(dest))})"
    )


def import_command(
    settings: Settings,
    src: str,
    mode: Mode,
    table: str | None = None,
    table_format: TableFormat | None = None,
) -> None:
    """`convect import FILE [--replace|--append] [--table T [--format F]]`."""
    if not Path(src).is_file():
        raise CommandError(f"{src} does not exist")
    if settings.storage == "s3" and not settings.s3_bucket:
        raise CommandError("CONVECT_STORAGE=s3 needs CONVECT_S3_BUCKET (the bucket's name)")
    url = database_url(settings)
    try:
        migrate.upgrade(url)
    except Exception as exc:
        raise CommandError(f"migrations failed: {str(exc).splitlines()[0]}") from None
    with Bars() as bars:
        summary = _run(_import(settings, url, src, mode, bars, table, table_format))
    for note in summary.notes:
        _say(f"note: {note}")
    if summary.created_tables:
        _say(f"created tables: {', '.join(summary.created_tables)}")
    _say(
        f"imported {_count(summary.documents, 'document')} into "
        f"{_count(len(summary.tables), 'table')} and {_count(summary.files, 'file')} "
        f"({_size(summary.file_bytes)}) from {src} in "
        f"{summary.seconds:.1f} s"
        + ("; the export's schema was recorded" if summary.schema_written else "")
        + (f"; {_count(summary.env_vars, 'environment variable')} set" if summary.env_vars else "")
    )


def data_command(
    settings: Settings, table: str | None, limit: int, order: Literal["asc", "desc"]
) -> None:
    """`convect data [TABLE]`: tables with counts, or a table's documents as JSON lines."""
    url = database_url(settings)
    if table is None:
        rows = _run(table_counts(url))
        width = max([len("table"), *(len(name) for name, _ in rows)])
        print(f"{'table':<{width}}  documents")
        for name, count in rows:
            print(f"{name:<{width}}  {count:>9,}")
        return

    async def dump() -> None:
        out = sys.stdout.buffer
        async for line in documents(url, table, limit=limit, order=order):
            out.write(line + b"\n")
        out.flush()

    _run(dump())


def indexes_command(settings: Settings) -> None:
    """`convect indexes`: the staged indexes and their background builds."""
    url = database_url(settings)

    async def read() -> list[index_builds.BuildState]:
        conn = await asyncpg.connect(url)
        try:
            return await index_builds.states(conn)
        finally:
            await conn.close()

    found = _run(read())
    if not found:
        print("no staged indexes")
        return
    for s in found:
        line = f"{s.table}.{s.index} ({s.kind}): staged, {s.state}"
        if s.builder:
            line += f" by {s.builder}"
        if s.error:
            line += f": {s.error.splitlines()[0]}"
        print(line)


def server_url(settings: Settings, url: str | None) -> str:
    """Where `run --watch` connects: --url, CONVECT_URL, else this folder's dev server."""
    if url:
        return url
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def admin_key(settings: Settings) -> str | None:
    """CONVECT_ADMIN_KEY, else the key `convect dev` keeps in the data folder, else None."""
    if settings.admin_key:
        return settings.admin_key
    path = settings.data_path / "admin_key"
    return path.read_text().strip() if path.is_file() else None


def watch_command(settings: Settings, path: str, args: dict[str, Any], url: str | None) -> None:
    """`convect run PATH ARGS --watch`: print the query's result on every change."""
    watcher = Watcher(server_url(settings, url), admin_key(settings), path, args)
    _run(watcher.run())


def logs_command(
    settings: Settings, url: str | None, follow: bool, history: int, jsonl: bool
) -> None:
    """`convect logs [--follow]`: the server's recent function calls, then new ones."""
    stream = stream_logs(
        server_url(settings, url), admin_key(settings), follow=follow, history=history, jsonl=jsonl
    )
    try:
        _run(stream)
    except KeyboardInterrupt:
        pass


def unknown_function(registry: Any, path: str) -> str | None:
    """A helpful message when `path` names no function of the app (None when it does)."""
    import difflib

    if registry.get(path) is not None:
        return None
    known = sorted(registry.functions)
    close = difflib.get_close_matches(path, known, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    listing = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
    return (
        f"no function {path!r} in {registry.folder}.{hint} Paths look like module:name "
        f"(functions: {listing or 'none'})"
    )


async def _migrate(settings: Settings, url: str, to: Target) -> MigrateSummary:
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    try:
        migration = Migration(settings, pool, to)

        def progress(done: MigrateSummary) -> None:
            _say(f"  moved {_count(done.moved, 'file')} ({_size(done.moved_bytes)}) so far")

        return await migration.run(progress)
    finally:
        await pool.close()


def storage_migrate_command(settings: Settings, to: Target) -> None:
    """`convect storage migrate --to s3|postgres`."""
    url = database_url(settings)
    try:
        summary = _run(_migrate(settings, url, to))
    except (ValueError, StorageError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    _say(
        f"moved {_count(summary.moved, 'file')} ({_size(summary.moved_bytes)}) to {to}; "
        f"{summary.already} already there, {summary.vanished} deleted meanwhile"
    )
