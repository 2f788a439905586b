from app.schema import define_schema, define_table
from app.values import v

schema = define_schema(
    {
        "authors": define_table({"name": v.string()}),
        "posts": define_table(
            {
                "author": v.id("authors"),
                "title": v.string(),
                "tags": v.optional(v.array(v.string())),
                "file": v.optional(v.id("_storage")),
                "count": v.optional(v.int64()),
                "blob": v.optional(v.bytes()),
                "ratio": v.optional(v.float64()),
            }
        ).index("by_author", ["author"]),
        "people": define_table(),  # any document: CSV and JSON imports
    }
)
