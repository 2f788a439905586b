"""The invalidation index: which query entries a write can affect.

Ranges are indexed by (table, index) and by the text of their equality prefix, so a
write costs time proportional to the entries whose prefix it shares, not to all.

Most keys (a document id, a prefix such as one user's id) are read by one live query
only, so a key holds that one entry (or range registration) alone and a set (or list)
only once a second joins it: a one-entry set takes 216 bytes and a one-item list with
its pair another 150, which 40,000 subscriptions would spend 15 MB on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from app.db.readset import RangeRead, ReadSet
from app.sync.matching import doc_in_range, eq_prefix, key_text
from app.values import kept


class Indexed(Protocol):
    """Anything registered in the index (a query entry)."""

    registrations: Sequence[Registration]


E = TypeVar("E", bound=Indexed)
K = TypeVar("K")


class RangeRegistration(Generic[E]):
    """One range an entry read, filed under its prefix text."""

    __slots__ = ("entry", "prefix", "read")

    def __init__(self, entry: E, read: RangeRead, prefix: bytes) -> None:
        self.entry = entry
        self.read = read
        self.prefix = prefix


# Where an entry sits in the index, so that it can be taken out again: a document id
# (table, id), a whole table (its name), or a range.
Registration = tuple[str, str] | str | RangeRegistration[Any]


def _put_entry(table: dict[K, Any], key: K, entry: object) -> None:
    """File `entry` under `key` (alone, or in a set with the others)."""
    held = table.get(key)
    if held is None:
        table[key] = entry
    elif isinstance(held, set):
        held.add(entry)
    elif held is not entry:
        table[key] = {held, entry}


def _take_entry(table: dict[K, Any], key: K, entry: object) -> None:
    """Take `entry` out from under `key`."""
    held = table.get(key)
    if held is entry:
        del table[key]
    elif isinstance(held, set):
        held.discard(entry)
        if len(held) == 1:
            table[key] = next(iter(held))
        elif not held:
            del table[key]


def _entries(held: Any) -> Iterable[Any]:
    """What `_put_entry` filed under one key, as an iterable."""
    if held is None:
        return ()
    return held if isinstance(held, set) else (held,)


class InvalidationIndex(Generic[E]):
    """Read sets of live entries, arranged for matching writes."""

    def __init__(self, exact_strings: bool = True) -> None:
        self.exact_strings = exact_strings
        # (table, id) -> the entry, or a set of them; table -> the same
        self.by_id: dict[tuple[str, str], E | set[E]] = {}
        self.by_table: dict[str, E | set[E]] = {}
        # table -> index -> eq length -> prefix text -> a registration, or a list of them
        self.ranges: dict[
            str,
            dict[str, dict[int, dict[bytes, RangeRegistration[E] | list[RangeRegistration[E]]]]],
        ] = {}
        self.fields: dict[tuple[str, str], tuple[str, ...]] = {}

    def add(self, entry: E, reads: ReadSet) -> None:
        """Register an entry's read set."""
        regs: list[Registration] = []
        for key in reads.ids:
            _put_entry(self.by_id, key, entry)
            regs.append(key)
        for table in reads.tables:
            _put_entry(self.by_table, table, entry)
            regs.append(table)
        for read in reads.ranges:
            r = read.range
            prefix = kept(key_text(list(r.eq)))  # kept as long as the entry
            by_prefix = self.ranges.setdefault(r.table, {}).setdefault(r.index, {})
            bucket = by_prefix.setdefault(len(r.eq), {})
            reg = RangeRegistration(entry, read, prefix)
            held = bucket.get(prefix)
            if held is None:
                bucket[prefix] = reg
            elif isinstance(held, list):
                held.append(reg)
            else:
                bucket[prefix] = [held, reg]
            self.fields[(r.table, r.index)] = r.fields
            regs.append(reg)
        entry.registrations = tuple(regs)

    def remove(self, entry: E) -> None:
        """Forget an entry's read set."""
        for reg in entry.registrations:
            if isinstance(reg, tuple):
                _take_entry(self.by_id, reg, entry)
            elif isinstance(reg, str):
                _take_entry(self.by_table, reg, entry)
            else:
                self._remove_range(reg)
        entry.registrations = ()

    def _remove_range(self, reg: RangeRegistration[E]) -> None:
        r = reg.read.range
        by_index = self.ranges.get(r.table)
        by_n = by_index.get(r.index) if by_index is not None else None
        by_prefix = by_n.get(len(r.eq)) if by_n is not None else None
        if by_index is None or by_n is None or by_prefix is None:
            return
        held = by_prefix.get(reg.prefix)
        if isinstance(held, list):
            rest = [other for other in held if other is not reg]
            if rest:  # (a list holds two or more; one left is held alone)
                by_prefix[reg.prefix] = rest if len(rest) > 1 else rest[0]
                return
        elif held is not reg:
            return
        del by_prefix[reg.prefix]
        if not by_prefix:
            del by_n[len(r.eq)]
            if not by_n:
                del by_index[r.index]
                if not by_index:
                    del self.ranges[r.table]

    def compact(self) -> None:
        """Rebuild the maps at the size they hold now.

        A dict or set keeps the table it grew to when its keys are removed: after a
        burst of subscriptions is gone, the maps would otherwise hold memory for all of
        them.
        """
        self.by_id = {k: set(v) if isinstance(v, set) else v for k, v in self.by_id.items()}
        self.by_table = {k: set(v) if isinstance(v, set) else v for k, v in self.by_table.items()}
        for by_index in self.ranges.values():
            for by_n in by_index.values():
                for n, by_prefix in by_n.items():
                    by_n[n] = dict(by_prefix)

    def on_table(self, table: str) -> set[E]:
        """Every entry that read anything of `table`."""
        hit: set[E] = set(_entries(self.by_table.get(table)))
        for (t, _), held in self.by_id.items():
            if t == table:
                hit.update(_entries(held))
        for by_n in self.ranges.get(table, {}).values():
            for by_prefix in by_n.values():
                for held_ranges in by_prefix.values():
                    for reg in _registrations(held_ranges):
                        hit.add(reg.entry)
        return hit

    def match(self, write: list[Any]) -> set[E]:
        """Entries a commit-log write `[table, id, old, new]` (decoded JSON) may affect."""
        table, doc_id, old, new = write
        if doc_id is None:  # the whole table changed (truncate, import)
            return self.on_table(table)
        hit: set[E] = set(_entries(self.by_id.get((table, doc_id))))
        hit.update(_entries(self.by_table.get(table)))
        indexes = self.ranges.get(table)
        if not indexes:
            return hit
        for index, by_n in indexes.items():
            fields = self.fields[(table, index)]
            for doc in (old, new):
                if doc is None:
                    continue
                for n, by_prefix in by_n.items():
                    prefix = eq_prefix(doc, fields, n)
                    if prefix is None:
                        continue
                    for reg in _registrations(by_prefix.get(prefix)):
                        entry = reg.entry
                        if entry not in hit and doc_in_range(doc, reg.read, self.exact_strings):
                            hit.add(entry)
        return hit


def _registrations(
    held: RangeRegistration[E] | list[RangeRegistration[E]] | None,
) -> Sequence[RangeRegistration[E]]:
    """The registrations filed under one prefix."""
    if held is None:
        return ()
    return held if isinstance(held, list) else (held,)


__all__ = ["Indexed", "InvalidationIndex", "RangeRegistration", "Registration"]
