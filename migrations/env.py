"""Alembic environment: runs Convect's system migrations under an advisory lock."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from app import embedded
from app.db.migrate import MIGRATION_LOCK, sqlalchemy_url
from app.settings import Settings

config = context.config
# `convect` passes the URL; a bare `alembic upgrade` uses the configured (or embedded) one.
url = config.attributes.get("url") or sqlalchemy_url(embedded.postgres_url(Settings()))


def run_migrations_offline() -> None:
    """Emit SQL without a database."""
    context.configure(url=url, literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations, one transaction each, holding an advisory lock so concurrent runs wait."""
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        conn.commit()
        try:
            context.configure(connection=conn, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
