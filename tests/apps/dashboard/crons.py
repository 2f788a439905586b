"""One cron, far from any test's time: the dashboard lists it with its next run."""

from app.server import CronJobs, internal

crons = CronJobs()

crons.cron("new year tidy", "0 0 1 1 *", internal.library.tidy)
