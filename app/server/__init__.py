"""What app authors import: the six decorators, `api`, `internal`, `HttpRouter`, `CronJobs`."""

from app.server.crons import CronJobs
from app.server.functions import (
    action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from app.server.http_router import HttpRouter, http_action
from app.server.refs import api, internal

__all__ = [
    "CronJobs",
    "HttpRouter",
    "action",
    "api",
    "http_action",
    "internal",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "mutation",
    "query",
]
