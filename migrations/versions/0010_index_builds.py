"""Staged indexes built in the background: one row per staged index (app.db.index_builds).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE _convect_index_builds (
            name text PRIMARY KEY,
            table_name text NOT NULL,
            index_name text NOT NULL,
            kind text NOT NULL,
            statement text NOT NULL,
            note text,
            state text NOT NULL CHECK (state IN ('backfilling', 'backfilled', 'failed')),
            error text,
            attempts integer NOT NULL DEFAULT 0,
            builder text,
            requested_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS _convect_index_builds")
