"""Optimistic mutations: `_convect_unchanged(ok)`, and the transaction of a socket
mutation's answer.

`_convect_unchanged(ok)` fails a statement with a serialization failure unless `ok`: an
optimistic mutation (docs/architecture.md "Optimistic mutations") commits as one
statement whose updates each require the version it read; the check turns "some update
found a newer version" into a retryable error that undoes the whole statement.

`_convect_mutation_requests.xid`: the transaction that stored a socket mutation's
answer, which is the one that logged its commit; an answer stored with the commit in
one statement cannot hold the commit's ts, so a resent request finds it by this xid.

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
    op.execute(
        "ALTER TABLE _convect_mutation_requests "
        "ADD COLUMN xid xid8 DEFAULT pg_current_xact_id()"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE _convect_mutation_requests DROP COLUMN IF EXISTS xid")
    op.execute("DROP FUNCTION IF EXISTS _convect_unchanged(boolean)")
