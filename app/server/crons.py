"""`CronJobs`: recurring calls of functions, defined in `functions/crons.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from croniter import croniter

from app.values import encode_value

_INTERVAL_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}


@dataclass(frozen=True)
class CronJob:
    """One recurring job: every `interval_s` seconds, or on a cron expression (UTC)."""

    name: str
    ref: Any
    args: dict[str, Any] = field(default_factory=dict)
    interval_s: float | None = None
    cron: str | None = None


class CronJobs:
    """The app's recurring jobs (Convex's `cronJobs()`)."""

    def __init__(self) -> None:
        self.jobs: dict[str, CronJob] = {}

    def _add(self, job: CronJob) -> None:
        if not isinstance(job.name, str) or not job.name:
            raise ValueError("A cron job needs a non-empty name")
        if job.name in self.jobs:
            raise ValueError(f"Cron job {job.name!r} is defined twice")
        if not isinstance(job.args, dict):
            raise TypeError(f"Cron job {job.name!r}: args must be a dict")
        encode_value(job.args)
        self.jobs[job.name] = job

    def interval(
        self, name: str, schedule: dict[str, float], ref: Any, args: dict[str, Any] | None = None
    ) -> None:
        """Run `ref` every `{"seconds"|"minutes"|"hours": n}`."""
        if not isinstance(schedule, dict) or len(schedule) != 1:
            raise ValueError(f"Cron job {name!r}: give one of {list(_INTERVAL_UNITS)}")
        ((unit, amount),) = schedule.items()
        if unit not in _INTERVAL_UNITS or not isinstance(amount, int | float) or amount <= 0:
            raise ValueError(f"Cron job {name!r}: invalid interval {schedule!r}")
        seconds = float(amount) * _INTERVAL_UNITS[unit]
        if seconds < 1:
            raise ValueError(f"Cron job {name!r}: the shortest interval is 1 second")
        self._add(CronJob(name, ref, dict(args or {}), interval_s=seconds))

    def cron(
        self, name: str, expression: str, ref: Any, args: dict[str, Any] | None = None
    ) -> None:
        """Run `ref` on a 5-field cron expression (UTC)."""
        if not isinstance(expression, str) or len(expression.split()) != 5:
            raise ValueError(f"Cron job {name!r}: expected a 5-field cron expression")
        if not croniter.is_valid(expression):
            raise ValueError(f"Cron job {name!r}: invalid cron expression {expression!r}")
        self._add(CronJob(name, ref, dict(args or {}), cron=expression))

    def hourly(
        self, name: str, schedule: dict[str, int], ref: Any, args: dict[str, Any] | None = None
    ) -> None:
        """Every hour at `{"minuteUTC": m}`."""
        self.cron(name, f"{_int(schedule, 'minuteUTC', 0, 59)} * * * *", ref, args)

    def daily(
        self, name: str, schedule: dict[str, int], ref: Any, args: dict[str, Any] | None = None
    ) -> None:
        """Every day at `{"hourUTC": h, "minuteUTC": m}`."""
        m, h = _int(schedule, "minuteUTC", 0, 59), _int(schedule, "hourUTC", 0, 23)
        self.cron(name, f"{m} {h} * * *", ref, args)

    def weekly(
        self, name: str, schedule: dict[str, Any], ref: Any, args: dict[str, Any] | None = None
    ) -> None:
        """Every week on `{"dayOfWeek": "monday", "hourUTC": h, "minuteUTC": m}`."""
        days = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
        day = schedule.get("dayOfWeek") if isinstance(schedule, dict) else None
        if day not in days:
            raise ValueError(f"Cron job {name!r}: dayOfWeek must be one of {days}")
        m, h = _int(schedule, "minuteUTC", 0, 59), _int(schedule, "hourUTC", 0, 23)
        self.cron(name, f"{m} {h} * * {days.index(day)}", ref, args)

    def monthly(
        self, name: str, schedule: dict[str, int], ref: Any, args: dict[str, Any] | None = None
    ) -> None:
        """Every month on `{"day": d, "hourUTC": h, "minuteUTC": m}`."""
        d = _int(schedule, "day", 1, 31)
        m, h = _int(schedule, "minuteUTC", 0, 59), _int(schedule, "hourUTC", 0, 23)
        self.cron(name, f"{m} {h} {d} * *", ref, args)


def _int(schedule: Any, key: str, lo: int, hi: int) -> int:
    value = schedule.get(key) if isinstance(schedule, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{key} must be an integer between {lo} and {hi}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{key} must be between {lo} and {hi}, got {value}")
    return int(value)
