"""The dashboard test app's schema: books point at their authors (at the top level and
nested); `scraps` holds any document."""

from app.schema import define_schema, define_table
from app.values import v

schema = define_schema(
    {
        "authors": define_table({"name": v.string()}),
        "books": define_table(
            {
                "title": v.string(),
                "year": v.number(),
                "author": v.optional(v.id("authors")),
                "coauthors": v.optional(v.array(v.id("authors"))),
                "credits": v.optional(v.object({"editor": v.id("authors"), "note": v.string()})),
            }
        ).index("by_year", ["year"]),
        "scraps": define_table(v.any()),
    }
)
