"""Upload URLs take one upload: the tokens already used, until they expire.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE _convect_upload_tokens (
            token bytea PRIMARY KEY,
            expires_ms bigint NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS _convect_upload_tokens")
