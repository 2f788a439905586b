"""The benchmark's one table (declared, so `convect deploy` creates it up front)."""

from app.schema import define_schema, define_table
from app.values import v

schema = define_schema(
    {
        "lag": define_table(
            {"due": v.number(), "batch": v.number(), "i": v.number(), "started": v.number()}
        )
    }
)
