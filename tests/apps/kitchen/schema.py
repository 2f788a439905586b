"""The kitchen test app's schema. Each area keeps its own tables under its own prefix.

Tables starting with `core_` belong to the core engine tests (tests/core, core_*.py).
Other areas: append your tables below with your own prefix (sched_, files_, search_).
"""

from app.schema import define_schema, define_table
from app.values import v

core_tables = {
    # Any document; indexes for range, order and filter tests.
    "core_things": define_table()
    .index("by_n", ["n"])
    .index("by_group_n", ["group", "n"])
    .index("by_group_created", ["group", "_creationTime"])
    .index("by_rank", ["meta.rank"]),
    # Validated documents: schema checks on insert, patch and replace.
    "core_strict": define_table(
        {
            "name": v.string(),
            "count": v.number(),
            "note": v.optional(v.union(v.string(), v.null())),
            "ref": v.optional(v.id("core_things")),
        }
    ).index("by_name", ["name"]),
    # Many small documents: read and write limits.
    "core_bulk": define_table({"i": v.number()}),
    # Events written by nested mutations (savepoints).
    "core_events": define_table({"event": v.string()}),
}

sched_tables = {
    # Scheduler tests (tests/scheduler, sched_*.py): counters bumped and runs recorded.
    "sched_counters": define_table({"name": v.string(), "value": v.number()}).index(
        "by_name", ["name"]
    ),
    "sched_runs": define_table(
        {"label": v.string(), "at": v.number(), "anonymous": v.optional(v.boolean())}
    ).index("by_label", ["label"]),
}

schema = define_schema({**core_tables, **sched_tables})
