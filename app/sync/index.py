"""The invalidation index: which query entries a write can affect.

Ranges are indexed by (table, index) and by the text of their equality prefix, so a
write costs time proportional to the entries whose prefix it shares, not to all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar

from app.db.readset import RangeRead, ReadSet
from app.sync.matching import doc_in_range, eq_prefix, key_text
from app.values import kept

# Where an entry sits in the index, so that it can be taken out again.
Registration = (
    tuple[Literal["id"], tuple[str, str]]
    | tuple[Literal["table"], str]
    | tuple[Literal["range"], str, str, int, bytes, RangeRead]
)


class Indexed(Protocol):
    """Anything registered in the index (a query entry)."""

    registrations: Sequence[Registration]


E = TypeVar("E", bound=Indexed)


class InvalidationIndex(Generic[E]):
    """Read sets of live entries, arranged for matching writes."""

    def __init__(self, exact_strings: bool = True) -> None:
        self.exact_strings = exact_strings
        self.by_id: dict[tuple[str, str], set[E]] = defaultdict(set)
        self.by_table: dict[str, set[E]] = defaultdict(set)
        # table -> index -> eq length -> prefix text -> [(entry, read)]
        self.ranges: dict[str, dict[str, dict[int, dict[bytes, list[tuple[E, RangeRead]]]]]] = (
            defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
        )
        self.fields: dict[tuple[str, str], tuple[str, ...]] = {}

    def add(self, entry: E, reads: ReadSet) -> None:
        """Register an entry's read set."""
        regs: list[Registration] = []
        for key in reads.ids:
            self.by_id[key].add(entry)
            regs.append(("id", key))
        for table in reads.tables:
            self.by_table[table].add(entry)
            regs.append(("table", table))
        for read in reads.ranges:
            r = read.range
            prefix = kept(key_text(list(r.eq)))  # kept as long as the entry
            bucket = self.ranges[r.table][r.index][len(r.eq)][prefix]
            bucket.append((entry, read))
            self.fields[(r.table, r.index)] = r.fields
            regs.append(("range", r.table, r.index, len(r.eq), prefix, read))
        entry.registrations = tuple(regs)

    def remove(self, entry: E) -> None:
        """Forget an entry's read set."""
        for reg in entry.registrations:
            if reg[0] == "id":
                ids = self.by_id.get(reg[1])
                if ids is not None:
                    ids.discard(entry)
                    if not ids:
                        del self.by_id[reg[1]]
            elif reg[0] == "table":
                tables = self.by_table.get(reg[1])
                if tables is not None:
                    tables.discard(entry)
                    if not tables:
                        del self.by_table[reg[1]]
            else:
                _, table, index, n, prefix, read = reg
                by_n = self.ranges.get(table, {}).get(index, {}).get(n)
                if by_n is None:
                    continue
                bucket = by_n.get(prefix)
                if bucket is None:
                    continue
                bucket[:] = [(e, rd) for (e, rd) in bucket if not (e is entry and rd is read)]
                if not bucket:
                    del by_n[prefix]
                    if not by_n:
                        del self.ranges[table][index][n]
                        if not self.ranges[table][index]:
                            del self.ranges[table][index]
                            if not self.ranges[table]:
                                del self.ranges[table]
        entry.registrations = ()

    def compact(self) -> None:
        """Rebuild the maps at the size they hold now.

        A dict or set keeps the table it grew to when its keys are removed: after a
        burst of subscriptions is gone, the maps would otherwise hold memory for all of
        them.
        """
        self.by_id = defaultdict(set, {k: set(v) for k, v in self.by_id.items()})
        self.by_table = defaultdict(set, {k: set(v) for k, v in self.by_table.items()})
        for by_index in self.ranges.values():
            for by_n in by_index.values():
                for n, by_prefix in by_n.items():
                    by_n[n] = defaultdict(list, by_prefix)

    def on_table(self, table: str) -> set[E]:
        """Every entry that read anything of `table`."""
        hit: set[E] = set(self.by_table.get(table, set()))
        hit |= {e for (t, _), entries in self.by_id.items() if t == table for e in entries}
        for by_n in self.ranges.get(table, {}).values():
            for by_prefix in by_n.values():
                for bucket in by_prefix.values():
                    hit |= {e for e, _ in bucket}
        return hit

    def match(self, write: list[Any]) -> set[E]:
        """Entries a commit-log write `[table, id, old, new]` (decoded JSON) may affect."""
        table, doc_id, old, new = write
        hit: set[E] = set()
        if doc_id is None:  # the whole table changed (truncate, import)
            return self.on_table(table)
        hit |= self.by_id.get((table, doc_id), set())
        hit |= self.by_table.get(table, set())
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
                    for entry, read in by_prefix.get(prefix, ()):
                        if entry not in hit and doc_in_range(doc, read, self.exact_strings):
                            hit.add(entry)
        return hit
