"""ConvexError: an application error whose data reaches the client."""

from __future__ import annotations

from typing import Any

import orjson

from app.values.encoding import ValueEncodingError, encode_value

__all__ = ["ConvexError"]


class ConvexError(Exception):
    """An error thrown on purpose; `data` (any Convex value) reaches the client."""

    def __init__(self, data: Any) -> None:
        super().__init__(data)
        self.data = data

    def __str__(self) -> str:
        """The data itself if a string, else its compact encoded JSON."""
        if isinstance(self.data, str):
            return self.data
        try:
            return orjson.dumps(encode_value(self.data)).decode()
        except ValueEncodingError:
            return repr(self.data)
