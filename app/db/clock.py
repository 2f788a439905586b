"""Document creation times: one clock per deployment's catalog."""

from __future__ import annotations

import time
from collections.abc import Callable

TICK_MS = 0.001  # how far a creation time moves past the previous one on a tie


class CreationClock:
    """Milliseconds since the epoch, strictly increasing for every time it hands out.

    Two documents created in the same millisecond (or after the system clock stepped
    back) still get distinct, ordered creation times.
    """

    def __init__(self, now_ms: Callable[[], float] | None = None) -> None:
        self._now_ms = now_ms if now_ms is not None else _wall_ms
        self._last = 0.0

    def next(self) -> float:
        """A creation time later than every one this clock gave before."""
        now = self._now_ms()
        if now <= self._last:
            now = self._last + TICK_MS
        self._last = now
        return now


def _wall_ms() -> float:
    return time.time() * 1000.0
