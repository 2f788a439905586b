"""Scheduler: due-time and in-progress indexes, worker leases, the deployment's queue namespace.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = 'docs."_scheduled_functions"'


def upgrade() -> None:
    # The worker that claimed an in-progress action (never part of the document users see).
    op.execute(f"ALTER TABLE {TABLE} ADD COLUMN worker text")
    # The sweeper's scans: pending rows by due time, in-progress actions by worker.
    op.execute(
        f'CREATE INDEX "_scheduled_functions__pending" ON {TABLE} '
        "(((doc ->> 'scheduledTime')::float8)) "
        "WHERE (doc -> 'state' ->> 'kind') = 'pending'"
    )
    op.execute(
        f'CREATE INDEX "_scheduled_functions__in_progress" ON {TABLE} (worker) '
        "WHERE (doc -> 'state' ->> 'kind') = 'inProgress'"
    )
    # Live workers: a worker whose lease ran out is dead; its in-progress actions fail.
    op.execute(
        """
        CREATE TABLE _convect_workers (
            id text PRIMARY KEY,
            host text NOT NULL DEFAULT '',
            pid integer NOT NULL DEFAULT 0,
            started_at timestamptz NOT NULL DEFAULT now(),
            lease_until timestamptz NOT NULL
        )
        """
    )
    # One random namespace per deployment: its Redis keys never collide with another's.
    op.execute(
        """
        CREATE TABLE _convect_scheduler (
            id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
            namespace text NOT NULL
        )
        """
    )
    op.execute(
        "INSERT INTO _convect_scheduler (namespace) "
        "VALUES (replace(gen_random_uuid()::text, '-', ''))"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS _convect_scheduler")
    op.execute("DROP TABLE IF EXISTS _convect_workers")
    op.execute('DROP INDEX IF EXISTS docs."_scheduled_functions__in_progress"')
    op.execute('DROP INDEX IF EXISTS docs."_scheduled_functions__pending"')
    op.execute(f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS worker")
