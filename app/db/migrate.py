"""Run the alembic migrations of Convect's system tables."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATION_LOCK = 0x636F6E76  # "conv": advisory lock key held while migrating
ROOT = Path(__file__).resolve().parent.parent.parent


def sqlalchemy_url(url: str) -> str:
    """Turn a libpq-style URL into one SQLAlchemy opens with psycopg 3."""
    parts = urlsplit(url)
    scheme = "postgresql+psycopg"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def alembic_config(url: str) -> Config:
    """An alembic Config pointing at this repo's migrations and the given database."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = sqlalchemy_url(url)
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database to `revision` (head by default)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """The newest revision in the migrations folder."""
    return ScriptDirectory.from_config(alembic_config("postgresql://x/y")).get_current_head()
