"""A SIGALRM deadline for tests that drive blocking clients on the main thread."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: the PyPI client's blocking calls hold the GIL."""

    def boom(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds}s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
