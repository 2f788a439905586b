"""Imports and exports through the admin API (`npx convex import` / `export`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE _convect_import_parts (
            token text NOT NULL,
            part integer NOT NULL,
            data bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (token, part)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE _convect_snapshots (
            id text PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('import', 'export')),
            created_ms double precision NOT NULL,
            state jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX _convect_snapshots_by_kind ON _convect_snapshots (kind, created_ms)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS _convect_snapshots")
    op.execute("DROP TABLE IF EXISTS _convect_import_parts")
