"""`_storage.sha256` in base64, as Convex (documents written before held hex).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_HEX = "'^[0-9a-f]{64}$'"


def upgrade() -> None:
    op.execute(
        f"""
        UPDATE docs."_storage"
        SET doc = jsonb_set(doc, '{{sha256}}', to_jsonb(encode(decode(doc ->> 'sha256', 'hex'), 'base64')))
        WHERE doc ->> 'sha256' ~ {_HEX}
        """
    )


def downgrade() -> None:
    op.execute(
        """
        UPDATE docs."_storage"
        SET doc = jsonb_set(doc, '{sha256}', to_jsonb(encode(decode(doc ->> 'sha256', 'base64'), 'hex')))
        WHERE length(doc ->> 'sha256') = 44
        """
    )
