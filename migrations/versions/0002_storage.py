"""File storage: blob chunks in PostgreSQL and the deployment's signing secret.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per chunk of a stored file (`storage_id` is the `_storage` document's id);
    # `start` is the chunk's byte offset, so range reads need no fixed chunk size.
    op.execute(
        """
        CREATE TABLE _convect_blobs (
            storage_id text NOT NULL,
            seq integer NOT NULL,
            start bigint NOT NULL,
            data bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (storage_id, seq)
        )
        """
    )
    # File contents are mostly compressed already (images, archives): store them
    # out of line without pglz, which also lets substring() read a slice cheaply.
    op.execute("ALTER TABLE _convect_blobs ALTER COLUMN data SET STORAGE EXTERNAL")
    op.execute(
        """
        CREATE TABLE _convect_secrets (
            name text PRIMARY KEY,
            value text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # gen_random_uuid() draws from pg_strong_random: two of them give 244 random bits.
    op.execute(
        "INSERT INTO _convect_secrets (name, value) VALUES ('storage', "
        "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS _convect_secrets")
    op.execute("DROP TABLE IF EXISTS _convect_blobs")
