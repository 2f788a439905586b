"""The deploy history: what each `convect deploy` (and dev reload) changed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE _convect_deploys (
            id bigserial PRIMARY KEY,
            deployed_at timestamptz NOT NULL DEFAULT now(),
            source text NOT NULL,
            first boolean NOT NULL,
            snapshot jsonb NOT NULL,
            changes jsonb NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS _convect_deploys")
