"""A project tracker's schema, ported from a Convex app without reshaping it.

It uses the forms a Convex schema is written with today: shared object validators
reused with `.extend`/`.pick`/`.omit`/`.partial`, `v.nullable` fields, a union-typed
table, a `v.any()` table, Convex's object form of index options and staged indexes.
The tests flip `STAGED` to enable the staged indexes with a second deploy.
"""

from app.schema import define_schema, define_table
from app.values import v

STAGED = True

# Shared validators, as a Convex app keeps them in `convex/validators.ts`.
task_fields = v.object(
    {
        "title": v.string(),
        "done": v.boolean(),
        "assignee": v.nullable(v.string()),  # must be present, may be null
        "dueAt": v.nullable(v.number()),
    }
)
task = task_fields.extend({"project": v.string(), "notes": v.optional(v.string())})
task_patch = task.omit("project").partial()
task_summary = task.pick("title", "done", "assignee")

comment = v.object({"kind": v.literal("comment"), "taskId": v.id("tasks"), "body": v.string()})
status_change = v.object(
    {"kind": v.literal("status"), "taskId": v.id("tasks"), "done": v.boolean()}
)

schema = define_schema(
    {
        "tasks": define_table(task)
        .index("by_project_done", {"fields": ["project", "done"]})
        .index("by_assignee", {"fields": ["assignee"], "staged": STAGED})
        .search_index(
            "search_title",
            {"searchField": "title", "filterFields": ["project"], "staged": STAGED},
        ),
        # Union-typed: a comment or a status change, indexed on the fields they share.
        "events": define_table(v.union(comment, status_change)).index(
            "by_task_kind", ["taskId", "kind"]
        ),
        # Anything goes: imported webhook payloads.
        "payloads": define_table(v.any()).index("by_source", ["source"]),
    }
)
