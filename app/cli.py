"""`convect`: dev | serve | worker | deploy | indexes | run | export | import | data | env."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sys
from typing import Any
from urllib.parse import quote

import typer

from app.settings import Settings

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Convect: Convex's model in Python, on PostgreSQL.",
)
log = logging.getLogger("convect")

FunctionsOpt = typer.Option(
    None, "--functions", help="Folder of the app's modules (CONVECT_FUNCTIONS)"
)
PortOpt = typer.Option(None, "--port", help="API listener port (CONVECT_PORT)")
SitePortOpt = typer.Option(None, "--site-port", help="HTTP actions port (CONVECT_SITE_PORT)")
DataDirOpt = typer.Option(None, "--data-dir", help="Data folder (CONVECT_DATA_DIR)")


def _settings(
    functions: str | None = None,
    port: int | None = None,
    site_port: int | None = None,
    data_dir: str | None = None,
) -> Settings:
    overrides: dict[str, Any] = {}
    if functions is not None:
        overrides["functions"] = functions
    if port is not None:
        overrides["port"] = port
    if site_port is not None:
        overrides["site_port"] = site_port
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    try:
        return Settings(**overrides)
    except Exception as exc:
        raise typer.BadParameter(f"Invalid settings: {exc}") from None


def _logging(settings: Settings) -> None:
    from app.logconfig import configure

    configure(settings)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _prepare(
    settings: Settings, *, migrate: bool, push: bool, force: bool = False, source: str = "dev"
) -> tuple[Settings, Any]:
    """Resolve embedded services, migrate, load the registry, push the schema (and record
    the deploy: always from `convect deploy`, from `dev` when something changed)."""
    from app import embedded
    from app.db import deploy as deploy_mod
    from app.db import migrate as migrate_mod
    from app.db.index_builds import IndexBuildError
    from app.engine.registry import RegistryError, load_registry

    try:
        settings = embedded.resolve(settings)
    except Exception as exc:
        _fail(f"could not start or reach the database/Redis: {exc}")
    assert settings.database_url is not None
    _check_database(settings.database_url)
    if migrate:
        try:
            migrate_mod.upgrade(settings.database_url)
        except Exception as exc:
            _fail(f"migrations failed (is the database reachable?): {exc}")
    os.environ.update(settings.function_environment)  # as Convex: os.environ, from import on
    try:
        registry = load_registry(settings.functions)
    except RegistryError as exc:
        from pathlib import Path

        from app.devlog import describe_load_error

        _fail(describe_load_error(exc, Path(settings.functions)))
    if push:
        from app.dataio.progress import steps

        try:
            with steps("pushing the schema") as say:
                report = asyncio.run(
                    deploy_mod.push_schema(
                        settings.database_url, registry.schema, force=force, say=say
                    )
                )
        except (deploy_mod.SchemaRefused, IndexBuildError) as exc:
            _fail(str(exc))
        for line in report.lines():
            typer.echo(f"schema: {line}")
        from app.db import deploys

        done = asyncio.run(
            deploys.record_at(
                settings.database_url,
                deploys.snapshot(registry.schema, registry.functions),
                source,
                always=source == "deploy",
            )
        )
        if done is not None and source == "deploy":
            for line in deploys.lines(done["changes"]):
                typer.echo(f"deploy: {line}")
    return settings, registry


@cli.command()
def dev(
    functions: str = FunctionsOpt,
    port: int = PortOpt,
    site_port: int = SitePortOpt,
    data_dir: str = DataDirOpt,
    worker: bool = typer.Option(True, help="Run a scheduler worker too"),
) -> None:
    """Embedded services, migrations, schema push, listeners and a worker, reloading on changes."""
    settings = _settings(functions, port, site_port, data_dir)
    if settings.admin_key is None:
        settings = settings.model_copy(update={"admin_key": _dev_admin_key(settings)})
    _logging(settings)
    for problem in settings.prod_problems():
        _fail(problem)
    settings, registry = _prepare(settings, migrate=True, push=True)
    typer.echo(
        f"Convect dev: API http://{settings.host}:{settings.port}  "
        f"HTTP actions http://{settings.host}:{settings.site_port}"
    )
    if settings.dev:  # in prod the key is a secret: never printed
        typer.echo(f"admin key: {settings.admin_key}")
        key = quote(settings.admin_key or "", safe="")
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        typer.echo(f"dashboard: http://{host}:{settings.port}/dashboard/#key={key}")
    from app.devserver import run_dev
    from app.serve import run_event_loop

    run_event_loop(run_dev(settings, registry, worker=worker))


def _dev_admin_key(settings: Settings) -> str:
    from app.embedded import data_file

    path = data_file(settings, "admin_key")
    if path.exists():
        return path.read_text().strip()
    key = "convect-dev-" + secrets.token_urlsafe(24)
    path.write_text(key)
    os.chmod(path, 0o600)
    return key


@cli.command()
def serve(
    functions: str = FunctionsOpt,
    port: int = PortOpt,
    site_port: int = SitePortOpt,
    data_dir: str = DataDirOpt,
) -> None:
    """Serve the API and site listeners (production role)."""
    settings = _settings(functions, port, site_port, data_dir)
    _logging(settings)
    for problem in settings.prod_problems():
        _fail(problem)
    settings, registry = _prepare(settings, migrate=False, push=False)
    from app.devserver import run_serve
    from app.serve import run_event_loop

    run_event_loop(run_serve(settings, registry))


@cli.command()
def worker(
    functions: str = FunctionsOpt,
    data_dir: str = DataDirOpt,
    check: bool = typer.Option(
        False, "--check", help="Exit 0 if this host's worker reports in (a liveness probe)"
    ),
    concurrency: int = typer.Option(
        32, min=1, envvar="CONVECT_WORKER_CONCURRENCY", help="Jobs run at once"
    ),
    poll_delay: float = typer.Option(
        0.01, min=0.001, envvar="CONVECT_WORKER_POLL_DELAY", help="Seconds between queue polls"
    ),
    lease: float = typer.Option(
        15.0, min=1.0, envvar="CONVECT_WORKER_LEASE", help="Seconds before a silent worker is dead"
    ),
) -> None:
    """Run scheduled functions and crons (production role)."""
    settings = _settings(functions, None, None, data_dir)
    if check:
        from app.scheduler import check_health

        raise typer.Exit(check_health(settings))
    _logging(settings)
    settings, registry = _prepare(settings, migrate=False, push=False)
    from app.devserver import run_worker_process
    from app.scheduler import WorkerOptions
    from app.serve import run_event_loop

    options = WorkerOptions(concurrency=concurrency, poll_delay=poll_delay, lease_s=lease)
    run_event_loop(run_worker_process(settings, registry, options))


@cli.command()
def deploy(
    functions: str = FunctionsOpt,
    data_dir: str = DataDirOpt,
    force: bool = typer.Option(False, "--force", help="Allow destructive schema changes"),
) -> None:
    """Run migrations and push the app schema (safe to run twice at once)."""
    settings = _settings(functions, None, None, data_dir)
    _logging(settings)
    _prepare(settings, migrate=True, push=True, force=force, source="deploy")
    typer.echo("deploy: done")


@cli.command()
def run(
    path: str = typer.Argument(..., help="Function path, e.g. messages:list"),
    args: str = typer.Argument("{}", help="Arguments as JSON"),
    functions: str = FunctionsOpt,
    data_dir: str = DataDirOpt,
    watch: bool = typer.Option(
        False, "--watch", help="Print a query's result again on every change (needs a server)"
    ),
    url: str = typer.Option(
        None, "--url", envvar="CONVECT_URL", help="Server for --watch (default: this dev server)"
    ),
    port: int = PortOpt,
) -> None:
    """Call a function as admin (internal ones too) and print its result as JSON."""
    settings = _settings(functions, port, None, data_dir)
    try:
        parsed = json.loads(args)
    except json.JSONDecodeError as exc:
        _fail(f"ARGS_JSON is not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        _fail("ARGS_JSON must be a JSON object")
    if watch:
        _data_command("watch_command", settings, path, parsed, url)
        return
    settings, registry = _prepare(settings, migrate=True, push=False)
    from app.dataio.commands import unknown_function
    from app.devserver import run_once

    problem = unknown_function(registry, path)
    if problem is not None:
        _fail(problem)

    code = asyncio.run(run_once(settings, registry, path, parsed))
    raise typer.Exit(code)


@cli.command()
def codegen(
    out: str = typer.Option(
        None, "--out", help="Output folder (default: the functions folder's _generated/)"
    ),
    functions: str = FunctionsOpt,
    python: bool = typer.Option(
        True, "--python/--no-python", help="Also write a typed Python client (client.py)"
    ),
) -> None:
    """Write api.d.ts, api.js and dataModel.d.ts for the JS clients, and a Python client."""
    from pathlib import Path

    from app.codegen import CodegenError, generate
    from app.engine.registry import RegistryError, load_registry

    settings = _settings(functions)
    try:
        registry = load_registry(settings.functions)
        written = generate(registry, out or Path(settings.functions) / "_generated", python=python)
    except (RegistryError, CodegenError) as exc:
        _fail(str(exc))
    for path in written:
        typer.echo(f"wrote {path}")


def _check_database(url: str) -> None:
    """Fail with one clear line when the database does not answer."""
    from app.dataio import DatabaseUnreachable, check_database

    try:
        asyncio.run(check_database(url))
    except DatabaseUnreachable as exc:
        _fail(str(exc))


def _data_command(name: str, *args: Any) -> None:
    """Run a command body from app.dataio.commands, turning its errors into one line."""
    from app.dataio import commands

    try:
        getattr(commands, name)(*args)
    except commands.CommandError as exc:
        _fail(str(exc))


@cli.command()
def data(
    table: str = typer.Argument(None, help="A table to print (omit to list the tables)"),
    limit: int = typer.Option(100, "--limit", min=1, help="Documents to print"),
    order: str = typer.Option(
        "desc", "--order", help="By creation time: desc (newest first) or asc"
    ),
    data_dir: str = DataDirOpt,
) -> None:
    """List the tables with their document counts, or print a table's documents as JSON lines."""
    if order not in ("asc", "desc"):
        raise typer.BadParameter("--order must be asc or desc")
    _data_command("data_command", _settings(data_dir=data_dir), table, limit, order)


@cli.command()
def logs(
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new calls"),
    history: int = typer.Option(20, "--history", min=0, help="Recent calls to print first"),
    jsonl: bool = typer.Option(False, "--jsonl", help="Each call as Convex's JSON"),
    url: str = typer.Option(
        None, "--url", envvar="CONVECT_URL", help="Server (default: this dev server)"
    ),
    port: int = PortOpt,
    data_dir: str = DataDirOpt,
) -> None:
    """Function calls of a running server: time, kind, path, duration, outcome, log lines."""
    settings = _settings(port=port, data_dir=data_dir)
    _data_command("logs_command", settings, url, follow, history, jsonl)


@cli.command(name="export")
def export_(
    file: str = typer.Argument(..., help="The zip file to write"),
    files: bool = typer.Option(True, "--files/--no-files", help="Include the stored files"),
    include_env: bool = typer.Option(
        False, "--include-env", help="Include the environment variables (secrets: off by default)"
    ),
    data_dir: str = DataDirOpt,
) -> None:
    """Write every table, the schema and the stored files to a zip in Convex's snapshot
    format (`npx convex import` reads it too)."""
    _data_command("export_command", _settings(data_dir=data_dir), file, files, include_env)


IMPORT_FORMATS = {".csv": "csv", ".jsonl": "jsonLines", ".json": "jsonArray"}


@cli.command(name="import")
def import_(
    file: str = typer.Argument(
        ..., help="An export zip (of Convect or Convex), or with --table a CSV/JSONL/JSON file"
    ),
    replace: bool = typer.Option(False, "--replace", help="Empty the imported tables first"),
    append: bool = typer.Option(
        False, "--append", help="Add to tables that hold documents (an existing id is an error)"
    ),
    table: str = typer.Option(None, "--table", help="Import one table from CSV, JSONL or JSON"),
    fmt: str | None = typer.Option(
        None, "--format", help="csv, jsonLines or jsonArray (default: from the file's extension)"
    ),
    data_dir: str = DataDirOpt,
) -> None:
    """Load an export or a table's file into this deployment (all or nothing); ids and
    creation times kept, Convex ids mapped so references keep resolving."""
    if replace and append:
        raise typer.BadParameter("pass --replace or --append, not both")
    mode = "replace" if replace else "append" if append else "empty"
    if table is None and fmt is not None:
        raise typer.BadParameter("--format goes with --table")
    if table is not None:
        import os.path

        fmt = fmt or IMPORT_FORMATS.get(os.path.splitext(file)[1].lower())
        if fmt not in IMPORT_FORMATS.values():
            raise typer.BadParameter("--format must be csv, jsonLines or jsonArray")
    _data_command("import_command", _settings(data_dir=data_dir), file, mode, table, fmt)


@cli.command()
def indexes(data_dir: str = DataDirOpt) -> None:
    """Show the staged indexes and their background builds (backfilling, backfilled, failed)."""
    _data_command("indexes_command", _settings(data_dir=data_dir))


env_cli = typer.Typer(
    no_args_is_help=True,
    help="The deployment's environment variables (as `npx convex env`): functions read "
    "them through os.environ in every process, within seconds of a change.",
)
cli.add_typer(env_cli, name="env")


def _env(action: str, *args: Any) -> Any:
    from app.envvars import commands

    try:
        return getattr(commands, action)(_settings(), *args)
    except commands.EnvCommandError as exc:
        _fail(str(exc))


@env_cli.command("list")
def env_list() -> None:
    """Print every variable as NAME=value."""
    for name, value in _env("env_list").items():
        typer.echo(f"{name}={value}")


@env_cli.command("get")
def env_get(name: str = typer.Argument(..., help="The variable's name")) -> None:
    """Print one variable's value (exit 1 if it is not set)."""
    value = _env("env_get", name)
    if value is None:
        _fail(f"environment variable {name!r} is not set")
    typer.echo(value)


@env_cli.command("set")
def env_set(
    name: str = typer.Argument(..., help="NAME, or NAME=value"),
    value: str = typer.Argument(None, help="The value (read from stdin when omitted)"),
) -> None:
    """Set a variable (all running processes see it within seconds)."""
    if value is None and "=" in name:
        name, value = name.split("=", 1)
    if value is None:
        value = sys.stdin.read().rstrip("\n")
    _env("env_change", name, value)
    typer.echo(f"set {name}", err=True)


@env_cli.command("remove")
def env_remove(name: str = typer.Argument(..., help="The variable's name")) -> None:
    """Remove a variable (a process's start-up value of that name shows again)."""
    _env("env_change", name, None)
    typer.echo(f"removed {name}", err=True)


storage_cli = typer.Typer(help="File storage: move files between PostgreSQL and S3.")
cli.add_typer(storage_cli, name="storage")


@storage_cli.command(name="migrate")
def storage_migrate(
    to: str = typer.Option(..., "--to", help="Where the files go: s3 or postgres"),
    data_dir: str = DataDirOpt,
) -> None:
    """Move every stored file's bytes to one backend (resumable; files stay readable)."""
    if to not in ("s3", "postgres"):
        raise typer.BadParameter("--to must be s3 or postgres")
    _data_command("storage_migrate_command", _settings(data_dir=data_dir), to)


def main() -> None:
    """Console script entry point."""
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
