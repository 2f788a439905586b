"""The cron app's table (declared, so `convect deploy` creates it before workers insert)."""

from app.schema import define_schema, define_table
from app.values import v

schema = define_schema({"ticks": define_table({"source": v.string(), "at": v.number()})})
