from app.schema import define_schema, define_table
from app.values import v

schema = define_schema(
    {
        "counters": define_table({"n": v.int64(), "tag": v.string()})
        .index("by_n", ["n"])
        .index("by_tag_n", ["tag", "n"]),
        "blobs": define_table({"b": v.bytes()}).index("by_b", ["b"]),
    }
)
