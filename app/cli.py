"""`convect`: dev | serve | worker | deploy | run | export | import | data."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sys
from typing import Any

import typer

from app.settings import Settings

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Convect: Convex's model in Python, on PostgreSQL.")
log = logging.getLogger("convect")

FunctionsOpt = typer.Option(None, "--functions", help="Folder of the app's modules (CONVECT_FUNCTIONS)")
PortOpt = typer.Option(None, "--port", help="API listener port (CONVECT_PORT)")
SitePortOpt = typer.Option(None, "--site-port", help="HTTP actions port (CONVECT_SITE_PORT)")
DataDirOpt = typer.Option(None, "--data-dir", help="Data folder (CONVECT_DATA_DIR)")


def _settings(functions: str | None = None, port: int | None = None, site_port: int | None = None,
              data_dir: str | None = None) -> Settings:
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


def _prepare(settings: Settings, *, migrate: bool, push: bool, force: bool = False) -> tuple[Settings, Any]:
    """Resolve embedded services, migrate, load the registry, push the schema."""
    from app import embedded
    from app.db import deploy as deploy_mod
    from app.db import migrate as migrate_mod
    from app.server.registry import RegistryError, load_registry

    try:
        settings = embedded.resolve(settings)
    except Exception as exc:
        _fail(f"could not start or reach the database/Redis: {exc}")
    assert settings.database_url is not None
    if migrate:
        try:
            migrate_mod.upgrade(settings.database_url)
        except Exception as exc:
            _fail(f"migrations failed (is the database reachable?): {exc}")
    try:
        registry = load_registry(settings.functions)
    except RegistryError as exc:
        _fail(str(exc))
    if push:
        try:
            report = asyncio.run(deploy_mod.push_schema(
                settings.database_url, registry.schema, force=force,
                say=lambda m: typer.echo(f"  {m}"),
            ))
        except deploy_mod.SchemaRefused as exc:
            _fail(str(exc))
        for line in report.lines():
            typer.echo(f"schema: {line}")
    return settings, registry


@cli.command()
def dev(functions: str = FunctionsOpt, port: int = PortOpt, site_port: int = SitePortOpt,
        data_dir: str = DataDirOpt, worker: bool = typer.Option(True, help="Run a scheduler worker too")) -> None:
    """Embedded services, migrations, schema push, listeners and a worker, reloading on changes."""
    settings = _settings(functions, port, site_port, data_dir)
    if settings.admin_key is None:
        settings = settings.model_copy(update={"admin_key": _dev_admin_key(settings)})
    _logging(settings)
    settings, registry = _prepare(settings, migrate=True, push=True)
    typer.echo(f"Convect dev: API http://{settings.host}:{settings.port}  "
               f"HTTP actions http://{settings.host}:{settings.site_port}")
    typer.echo(f"admin key: {settings.admin_key}")
    from app.devserver import run_dev

    asyncio.run(run_dev(settings, registry, worker=worker))


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
def serve(functions: str = FunctionsOpt, port: int = PortOpt, site_port: int = SitePortOpt,
          data_dir: str = DataDirOpt) -> None:
    """Serve the API and site listeners (production role)."""
    settings = _settings(functions, port, site_port, data_dir)
    _logging(settings)
    if settings.mode == "prod" and not settings.admin_key:
        _fail("CONVECT_ADMIN_KEY is required in prod mode")
    settings, registry = _prepare(settings, migrate=False, push=False)
    from app.devserver import run_serve

    asyncio.run(run_serve(settings, registry))


@cli.command()
def deploy(functions: str = FunctionsOpt, data_dir: str = DataDirOpt,
           force: bool = typer.Option(False, "--force", help="Allow destructive schema changes")) -> None:
    """Run migrations and push the app schema (safe to run twice at once)."""
    settings = _settings(functions, None, None, data_dir)
    _logging(settings)
    _prepare(settings, migrate=True, push=True, force=force)
    typer.echo("deploy: done")


@cli.command()
def run(path: str = typer.Argument(..., help="Function path, e.g. messages:list"),
        args: str = typer.Argument("{}", help="Arguments as JSON"),
        functions: str = FunctionsOpt, data_dir: str = DataDirOpt) -> None:
    """Call a function as admin (internal ones too) and print its result as JSON."""
    settings = _settings(functions, None, None, data_dir)
    try:
        parsed = json.loads(args)
    except json.JSONDecodeError as exc:
        _fail(f"ARGS_JSON is not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        _fail("ARGS_JSON must be a JSON object")
    settings, registry = _prepare(settings, migrate=True, push=False)
    from app.devserver import run_once

    code = asyncio.run(run_once(settings, registry, path, parsed))
    raise typer.Exit(code)


def main() -> None:
    """Console script entry point."""
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
