"""Document latches: optimistic mutations in one process take turns on a document.

An optimistic mutation (docs/architecture.md "Optimistic mutations") reads documents by
id and commits only if none of them changed meanwhile. Two that read the same document
at once cannot both commit: one is re-run, and everything it did is wasted (a quarter of
all attempts in a transfer benchmark at 32 connections on 100 accounts). A latch makes
the second wait *before* it reads, until the first has committed, so it reads the new
version and commits at its first attempt.

Latches only order mutations inside one process; correctness never depends on them (the
commit statement still checks every version read, and other processes are not latched).
Deadlock-free by wait-die: a mutation that holds latches waits only for a *younger*
holder (started after it); facing an older one it lets go of everything and starts
again once that one is done (`LatchDied`), keeping its age, so the oldest always gets
through. A latch is handed to the next waiter in arrival order when let go (no herd of
waiters racing for it). Every wait is bounded (`wait_s`): past it the mutation reads
without the latch, as it would without latches at all.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field


class LatchDied(BaseException):
    """Raised at a read in a mutation that met an older holder: let go of every latch,
    wait for a turn at `doc_id` (`Latches.take_turn`), then run the attempt again (not a
    retry: nothing was written)."""

    def __init__(self, doc_id: str) -> None:
        super().__init__("latch held by an older mutation")
        self.doc_id = doc_id


@dataclass(eq=False)
class Holder:
    """One mutation call: its age (smaller is older) and the documents it has latched."""

    age: int
    held: list[str] = field(default_factory=list)
    restarts: int = 0
    turns: set[asyncio.Future[None]] = field(default_factory=set)  # its places in queues


@dataclass(eq=False)
class _Latch:
    owner: Holder
    queue: deque[tuple[Holder, asyncio.Future[None]]] = field(default_factory=deque)


class Latches:
    """The latches of one process, by document id; each handed on in arrival order."""

    def __init__(self, wait_s: float = 1.0) -> None:
        self.wait_s = wait_s
        self._ages = itertools.count()
        self._by_doc: dict[str, _Latch] = {}

    def __len__(self) -> int:
        return len(self._by_doc)

    def holder(self) -> Holder:
        """A new mutation call's holder (younger than every earlier one)."""
        return Holder(next(self._ages))

    async def acquire(self, holder: Holder, doc_id: str) -> None:
        """Latch `doc_id` for `holder` before it reads it (see the module docstring).

        A holder that has latches joins a document's queue only behind younger ones (the
        owner and every waiter): whoever it waits for then never waits for it."""
        latch = self._by_doc.get(doc_id)
        if latch is None:
            self._by_doc[doc_id] = _Latch(holder)
            holder.held.append(doc_id)
            return
        if latch.owner is holder:
            return
        if holder.held and (
            latch.owner.age < holder.age or any(h.age < holder.age for h, _ in latch.queue)
        ):
            raise LatchDied(doc_id)
        turn = asyncio.get_running_loop().create_future()
        latch.queue.append((holder, turn))
        holder.turns.add(turn)
        try:
            async with asyncio.timeout(self.wait_s):
                await turn
        except TimeoutError:
            pass  # waited long enough: read without the latch (unless it came just now)
        finally:
            holder.turns.discard(turn)

    def release(self, holder: Holder) -> None:
        """Let go of every latch `holder` has, each to the next in its queue, and leave
        the queues it still waits in (a read left waiting when its attempt ended must
        not be handed a latch nobody would let go of)."""
        for turn in holder.turns:
            turn.cancel()
        holder.turns.clear()
        for doc_id in holder.held:
            latch = self._by_doc.get(doc_id)
            if latch is None or latch.owner is not holder:
                continue
            while latch.queue:
                nxt, turn = latch.queue.popleft()
                if not turn.done():  # (a waiter that gave up is skipped)
                    latch.owner = nxt
                    nxt.held.append(doc_id)
                    turn.set_result(None)
                    break
            else:
                del self._by_doc[doc_id]
        holder.held.clear()

    async def take_turn(self, holder: Holder, doc_id: str) -> None:
        """Wait (holding nothing) until those ahead at `doc_id` are done with it."""
        assert not holder.held
        await self.acquire(holder, doc_id)
        self.release(holder)
