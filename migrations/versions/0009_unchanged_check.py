"""`_convect_unchanged(ok)`: fails a statement with a serialization failure unless `ok`.

An optimistic mutation (see `app/db/optimistic.py`) commits as one statement whose
updates each require the version it read; this check turns "some update found a newer
version" into a retryable error that undoes the whole statement.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION _convect_unchanged(ok boolean) RETURNS boolean
        LANGUAGE plpgsql AS $$
        BEGIN
            IF ok IS NOT TRUE THEN
                RAISE EXCEPTION 'a document this mutation read changed before it committed'
                    USING ERRCODE = 'serialization_failure';
            END IF;
            RETURN true;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS _convect_unchanged(boolean)")
