"""A bank under load: transfers from HTTP, socket and PyPI clients, watched by subscribers.

Every client keeps a ledger of what the server acknowledged (tests/reliability/
bank_clients.py); observers check each Transition they receive (bank_observers.py).
`Run.verify` checks the invariants: the total never moves in any state a client sees,
and every acknowledged transfer is applied exactly once.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.reliability.bank_clients import (
    ACCOUNTS,
    CONFLICT,
    START,
    TOTAL,
    Ledger,
    SocketClient,
    balances,
    http_client,
    open_accounts,
    pypi_client,
    random_transfer,
)
from tests.reliability.bank_observers import Observer, total_values
from tests.support.calls import query

__all__ = ["ACCOUNTS", "START", "TOTAL", "Mix", "Run", "balances", "open_accounts",
           "random_transfer"]  # fmt: skip


@dataclass
class Mix:
    """How many clients of each kind."""

    http: int = 36
    sockets: int = 24
    pypi: int = 4
    observers: int = 4

    @property
    def writers(self) -> int:
        """Concurrent clients doing transfers."""
        return self.http + self.sockets + self.pypi


@dataclass
class Run:
    """A bank load in progress (or done): its clients, ledger and observers."""

    url: str
    accounts: list[str]
    mix: Mix
    ledger: Ledger = field(default_factory=Ledger)
    sockets: list[SocketClient] = field(default_factory=list)
    observers: list[Observer] = field(default_factory=list)
    started: float = 0.0
    duration: float = 0.0

    async def go(self, seconds: float, during: Any = None) -> None:
        """Run every client for `seconds` (and the coroutine `during`, if any, meanwhile)."""
        for i in range(self.mix.observers):
            obs = Observer(self.url, self.accounts, f"observer-{i}")
            await obs.start()
            self.observers.append(obs)
        for _ in range(self.mix.sockets):
            sc = SocketClient(self.url, [("accounts:total", {})])
            await sc.connect()
            self.sockets.append(sc)
        stop, thread_stop = asyncio.Event(), threading.Event()
        tasks = [asyncio.create_task(o.run(stop)) for o in self.observers]
        writers = [
            *(http_client(self.url, self.accounts, 1000 + i, stop, self.ledger)
              for i in range(self.mix.http)),
            *(sc.transfers(self.accounts, 2000 + i, stop, self.ledger)
              for i, sc in enumerate(self.sockets)),
            *(asyncio.to_thread(pypi_client, self.url, self.accounts, 3000 + i, thread_stop,
                                self.ledger) for i in range(self.mix.pypi)),
        ]  # fmt: skip
        self.started = time.monotonic()

        async def timer() -> None:
            await asyncio.sleep(seconds)
            stop.set()
            thread_stop.set()

        extra = [during] if during is not None else []
        await asyncio.gather(timer(), *writers, *extra)
        self.duration = time.monotonic() - self.started
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def verify(self, client: httpx.AsyncClient, failures: str = CONFLICT) -> dict[str, float]:
        """The invariants: money kept, every acknowledged transfer applied once, observers
        consistent in every Transition and at the final state. Returns the final balances.

        Error replies other than refusals must match `failures` (by default: a mutation
        that gave up after its retries under contention, as Convex's OCC does).
        """
        ledger = self.ledger
        assert ledger.unknown == [], ledger.unknown[:5]
        unexpected = [m for m in ledger.failed if not re.search(failures, m)]
        assert unexpected == [], unexpected[:5]
        final = await balances(client, self.accounts)
        assert sum(final.values()) == TOTAL
        assert await query(client, "accounts:total") == TOTAL
        assert final == ledger.expected(self.accounts), "acknowledged transfers != balances"
        assert all(b >= 0 for b in final.values())
        pushed = total_values(self.sockets)
        assert pushed and all(v == TOTAL for v in pushed), sorted(set(map(str, pushed)))[:5]
        for obs in self.observers:
            await obs.converge(final)
            assert obs.violations == [], obs.violations[:5]
        return final

    def summary(self) -> str:
        """One line of figures for the test output (and docs/reliability.md)."""
        ledger = self.ledger
        n = len(ledger.applied)
        pushed = sum(len(c.transitions) for sc in self.sockets for c in sc.history)
        seen = sum(o.transitions for o in self.observers)
        return (
            f"{self.mix.writers} writers ({self.mix.http} httpx, {self.mix.sockets} sockets, "
            f"{self.mix.pypi} PyPI) for {self.duration:.1f}s: {n} transfers applied "
            f"({n / max(self.duration, 1e-9):.0f}/s; {dict(ledger.by_client)}), "
            f"{ledger.refused} refused, {len(ledger.failed)} failed, {ledger.resent} resent; "
            f"{pushed} transitions to writers, {seen} checked by {len(self.observers)} observers"
        )

    async def close(self) -> None:
        """Close every socket."""
        for sc in [*self.sockets, *(o.socket for o in self.observers)]:
            try:
                await sc.close()
            except Exception:
                pass
