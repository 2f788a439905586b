"""The dev-loop test app's schema."""

from app.schema import define_schema, define_table
from app.values import v

schema = define_schema({"notes": define_table({"text": v.string()})})
