"""The dashboard test app's schema: books point at their authors."""

from app.schema import define_schema, define_table
from app.values import v

schema = define_schema(
    {
        "authors": define_table({"name": v.string()}),
        "books": define_table(
            {"title": v.string(), "year": v.number(), "author": v.optional(v.id("authors"))}
        ).index("by_year", ["year"]),
    }
)
