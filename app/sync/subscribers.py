"""The sockets subscribed to one live query, each with how many of its query ids it serves.

Nearly every live query has exactly one subscriber, so that one is held in two slots and
a dict is made only for a second: a dict of one key takes 224 bytes, which 40,000
subscriptions would spend 9 MB on (and a flood of them leaves the memory scattered).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")


class Subscribers(Mapping[K, int], Generic[K]):
    """subscriber -> query ids it has on this entry (read as a mapping; changed by
    `add` and `remove`). A lone subscriber is matched by identity, several by hash and
    equality: subscribers (socket sessions) are equal only to themselves."""

    __slots__ = ("_count", "_many", "_one")

    def __init__(self) -> None:
        self._one: K | None = None
        self._count = 0
        self._many: dict[K, int] | None = None

    def add(self, subscriber: K) -> None:
        """One more query id of `subscriber` on this entry."""
        many = self._many
        if many is not None:
            many[subscriber] = many.get(subscriber, 0) + 1
        elif self._one is None:
            self._one, self._count = subscriber, 1
        elif self._one is subscriber:
            self._count += 1
        else:
            self._many = {self._one: self._count, subscriber: 1}
            self._one, self._count = None, 0

    def remove(self, subscriber: K) -> None:
        """One query id of `subscriber` fewer (a subscriber left with none is gone)."""
        many = self._many
        if many is not None:
            count = many.get(subscriber, 0) - 1
            if count > 0:
                many[subscriber] = count
            else:
                many.pop(subscriber, None)
                if not many:
                    self._many = None
        elif self._one is subscriber:
            self._count -= 1
            if self._count <= 0:
                self._one, self._count = None, 0

    def __getitem__(self, subscriber: K) -> int:
        if self._many is not None:
            return self._many[subscriber]
        if self._one is not None and self._one is subscriber:
            return self._count
        raise KeyError(subscriber)

    def __iter__(self) -> Iterator[K]:
        if self._many is not None:
            return iter(list(self._many))
        return iter(() if self._one is None else (self._one,))

    def __len__(self) -> int:
        if self._many is not None:
            return len(self._many)
        return 0 if self._one is None else 1

    def __bool__(self) -> bool:
        return self._one is not None or self._many is not None

    def __repr__(self) -> str:
        return f"Subscribers({dict(self.items())!r})"


__all__ = ["Subscribers"]
