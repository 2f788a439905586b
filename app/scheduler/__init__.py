"""Scheduled functions and crons: `ctx.scheduler`, the `_scheduled_functions` table, arq workers."""

from app.scheduler.scheduler import Scheduler, SchedulerError
from app.scheduler.service import SchedulerService
from app.scheduler.worker import SchedulerWorker, WorkerOptions, check_health, run_worker

__all__ = [
    "Scheduler",
    "SchedulerError",
    "SchedulerService",
    "SchedulerWorker",
    "WorkerOptions",
    "check_health",
    "run_worker",
]
