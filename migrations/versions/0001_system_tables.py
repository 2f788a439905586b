"""System tables: table catalog, commit log, clock, schema, _storage, _scheduled_functions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import time
import zlib

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SYSTEM_TABLES = ("_storage", "_scheduled_functions")


def table_number(name: str) -> int:
    """The number ids carry for a table: CRC-32 of its name (app.db.ids does the same)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("CREATE SCHEMA IF NOT EXISTS docs")
    op.execute(
        """
        CREATE TABLE _convect_tables (
            name text PRIMARY KEY,
            number integer NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    for name in SYSTEM_TABLES:
        number = table_number(name)
        op.execute(f"INSERT INTO _convect_tables (name, number) VALUES ('{name}', {number})")
        op.execute(
            f"""
            CREATE TABLE docs."{name}" (
                id text PRIMARY KEY,
                creation_time double precision NOT NULL,
                doc jsonb NOT NULL
            ) WITH (fillfactor = 80)
            """
        )
        op.execute(f'CREATE INDEX "{name}__by_creation_time" ON docs."{name}" (creation_time, id)')
    # One monotonic u64 clock for commit timestamps; starts at the epoch in ns so that it
    # looks like the real server's clock, and survives restarts because it lives here.
    op.execute(f"CREATE SEQUENCE _convect_ts START WITH {time.time_ns()}")
    op.execute(
        """
        CREATE TABLE _convect_commits (
            ts bigint PRIMARY KEY,
            xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            writes jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX _convect_commits_xid ON _convect_commits (xid)")
    op.execute(
        """
        CREATE TABLE _convect_schema (
            id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
            schema jsonb NOT NULL,
            deployed_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE _convect_mutation_requests (
            session_id text NOT NULL,
            request_id bigint NOT NULL,
            response jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (session_id, request_id)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS _convect_mutation_requests")
    op.execute("DROP TABLE IF EXISTS _convect_schema")
    op.execute("DROP TABLE IF EXISTS _convect_commits")
    op.execute("DROP SEQUENCE IF EXISTS _convect_ts")
    op.execute("DROP SCHEMA IF EXISTS docs CASCADE")
    op.execute("DROP TABLE IF EXISTS _convect_tables")
