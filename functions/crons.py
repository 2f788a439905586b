"""Recurring jobs: each tick runs once, on whichever worker picks it up."""

from app.server import CronJobs, api

crons = CronJobs()

# Every day at 03:00 UTC, drop log entries older than a week (through the scheduler).
crons.daily("clean up old logs", {"hourUTC": 3, "minuteUTC": 0}, api.logs.schedule_cleanup)
