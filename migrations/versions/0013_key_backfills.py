"""Key columns filled by a trigger and backfilled in batches (app.db.key_fill).

A key column that a deploy adds to an existing table is a plain `jsonb` column, filled
by a trigger on every write, so adding it does not rewrite the table. One row here per
such column that still has rows written before it to fill: `after` is the last document
id filled (the backfill goes in id order, one short transaction per batch).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE _convect_key_backfills (
            table_name text NOT NULL,
            column_name text NOT NULL,
            field text NOT NULL,
            after text,
            filled bigint NOT NULL DEFAULT 0,
            requested_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (table_name, column_name)
        )
        """
    )


def downgrade() -> None:
    # The trigger-filled key columns go with it (their functions, triggers and indexes):
    # an older version's `convect deploy` adds its own generated key columns back.
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
          FOR r IN
            SELECT t.tgrelid::regclass AS tbl, t.tgname AS col, t.tgfoid::regprocedure AS fn
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'docs' AND NOT t.tgisinternal AND starts_with(t.tgname, 'k:')
          LOOP
            EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.fn);
            EXECUTE format('ALTER TABLE %s DROP COLUMN IF EXISTS %I', r.tbl, r.col);
          END LOOP;
        END $$
        """
    )
    op.execute("DROP TABLE IF EXISTS _convect_key_backfills")
