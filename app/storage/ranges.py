"""HTTP `Range` and conditional headers for serving stored files (RFC 9110)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_POS = re.compile(r"^[0-9]{1,40}$")


@dataclass(frozen=True)
class ByteRange:
    """Bytes `[start, stop)` of a file."""

    start: int
    stop: int

    def content_range(self, size: int) -> str:
        """The `Content-Range` value of a 206 reply."""
        return f"bytes {self.start}-{self.stop - 1}/{size}"


class RangeNotSatisfiable(ValueError):
    """The `Range` header names no byte of the file (reply 416)."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range asked for; None to send the whole file.

    Units other than bytes and multi-range requests are ignored (the whole file is
    sent, which RFC 9110 allows); a malformed or unsatisfiable byte range raises.
    """
    if header is None:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not _POS.match(first)) or (last and not _POS.match(last)):
        raise RangeNotSatisfiable(f"Malformed Range header {header[:100]!r}")
    if not first:
        if not last or int(last) == 0:
            raise RangeNotSatisfiable("A suffix range must ask for at least one byte")
        return ByteRange(max(0, size - int(last)), size)
    start = int(first)
    if last and int(last) < start:
        raise RangeNotSatisfiable("The range ends before it starts")
    if start >= size:
        raise RangeNotSatisfiable(f"The range starts at or after the end of the file ({size})")
    stop = size if not last else min(int(last) + 1, size)
    return ByteRange(start, stop)


def etag_matches(header: str | None, etag: str) -> bool:
    """True when an `If-None-Match` header names `etag` (weakly) or is `*`."""
    if header is None:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False
