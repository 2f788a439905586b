"""The operations tests' app (tests/ops): a ledger of unique tokens, and a contended counter."""

from app.schema import define_schema, define_table
from app.values import v

schema = define_schema(
    {
        # One document per mutation a client made: each token must end up here exactly once.
        "ops_entries": define_table({"token": v.string(), "client": v.string()})
        .index("by_token", ["token"])
        .index("by_client", ["client"]),
        # Written by scheduled follow-ups (run by `convect worker`): also exactly once.
        "ops_confirms": define_table({"token": v.string()}).index("by_token", ["token"]),
        "ops_counters": define_table({"name": v.string(), "value": v.number()}).index(
            "by_name", ["name"]
        ),
    }
)
