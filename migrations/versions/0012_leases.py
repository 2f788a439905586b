"""Leases: work that one process of a deployment does at a time (the storage sweep).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE _convect_leases (
            name text PRIMARY KEY,
            holder text NOT NULL,
            until timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS _convect_leases")
