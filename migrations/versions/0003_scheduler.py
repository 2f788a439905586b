"""Scheduler: the queue of what is left to run, worker leases, the Redis namespace.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # What is left to run: one row per pending (worker NULL) or running (worker set)
    # scheduled function, deleted in the transaction that ends it. `_scheduled_functions`
    # documents get no extra index, so their state changes stay HOT updates that do not
    # touch index pages (no false serialization conflicts between concurrent runs).
    op.execute(
        """
        CREATE TABLE _convect_scheduled_queue (
            id text PRIMARY KEY,
            due double precision NOT NULL,
            worker text
        ) WITH (fillfactor = 80)
        """
    )
    op.execute("CREATE INDEX _convect_scheduled_queue_due ON _convect_scheduled_queue (due)")
    # Live workers: a worker whose lease ran out is dead; its running actions fail.
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
    op.execute("DROP TABLE IF EXISTS _convect_scheduled_queue")
