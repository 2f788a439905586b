"""Give the C heap's free pages back to the operating system (glibc's `malloc_trim`).

glibc keeps memory a process freed for its next allocations; the free pages inside its
heap go back to the system only when something asks. Python's own small-object arenas
(1 MiB each) are returned by Python once empty and are not affected. Where the C library
is not glibc (musl has no `malloc_trim`), this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the process runs on
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


__all__ = ["release_free_memory"]
