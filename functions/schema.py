"""The demo app's schema."""

from app.schema import define_schema, define_table
from app.values import v

schema = define_schema(
    {
        "messages": define_table(
            {"author": v.string(), "body": v.string(), "likes": v.optional(v.number())}
        )
        .index("by_author", ["author"])
        .search_index("search_body", search_field="body", filter_fields=["author"]),
        "accounts": define_table({"owner": v.string(), "balance": v.number()}).index(
            "by_owner", ["owner"]
        ),
        "logs": define_table({"event": v.string(), "to": v.optional(v.string())}),
        "items": define_table(
            {"name": v.string(), "category": v.string(), "price": v.optional(v.number())}
        ).index("by_category", ["category"]),
        "posts": define_table({"author": v.string(), "title": v.string()}).index(
            "by_author", ["author"]
        ),
        "secrets": define_table({"value": v.string()}),
        "documents": define_table(
            {"text": v.string(), "category": v.string(), "embedding": v.array(v.float64())}
        ).vector_index(
            "by_embedding", vector_field="embedding", dimensions=384, filter_fields=["category"]
        ),
        "files": define_table(
            {"name": v.string(), "storageId": v.id("_storage"), "author": v.optional(v.string())}
        ),
        "users": define_table({"name": v.string(), "email": v.optional(v.string())}),
        "webhook_events": define_table({"type": v.string(), "data": v.optional(v.any())}),
    }
)
