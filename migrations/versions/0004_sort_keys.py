"""Sort keys: index and compare int64 and bytes values in their own order.

Documents store Convex's wire encoding, so an int64 is `{"$integer": <base64 of 8
little-endian bytes>}` and bytes are `{"$bytes": <base64>}`; as jsonb those compare by
their base64 text, which is not numeric or byte order. `convect_sort_key` maps them to
`{"$integer": <number>}` and `{"$bytes": <hex>}` (and leaves every other value as it
is); index key columns are generated from it and range comparisons apply it to both
sides. No user object can take either shape: `$`-prefixed field names are reserved.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION convect_int64(hex text) RETURNS bigint
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
          SELECT ('x' || substr(hex, 15, 2) || substr(hex, 13, 2) || substr(hex, 11, 2)
                      || substr(hex, 9, 2) || substr(hex, 7, 2) || substr(hex, 5, 2)
                      || substr(hex, 3, 2) || substr(hex, 1, 2))::bit(64)::bigint
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION convect_sort_key(v jsonb) RETURNS jsonb
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
          SELECT CASE
            WHEN jsonb_typeof(v) <> 'object' THEN v
            WHEN v ? '$integer' THEN jsonb_build_object(
              '$integer', convect_int64(encode(decode(v ->> '$integer', 'base64'), 'hex')))
            WHEN v ? '$bytes' THEN jsonb_build_object(
              '$bytes', encode(decode(v ->> '$bytes', 'base64'), 'hex'))
            ELSE v
          END
        $$
        """
    )


def downgrade() -> None:
    # Key columns of app tables are generated from convect_sort_key: they go with it
    # (the next `convect deploy` of an older version recreates its own).
    op.execute("DROP FUNCTION IF EXISTS convect_sort_key(jsonb) CASCADE")
    op.execute("DROP FUNCTION IF EXISTS convect_int64(text)")
