"""A one-second interval cron, and one naming a function that does not exist."""

from app.server import CronJobs, internal

crons = CronJobs()
crons.interval("every second", {"seconds": 1}, internal.ticks.record, {"source": "interval"})
crons.interval("broken", {"seconds": 1}, internal.ticks.missing)
