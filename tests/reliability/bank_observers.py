"""Observers of the bank: sockets that check every Transition they receive.

One socket subscribes to `accounts:total` and to every account's balance. After each
Transition the total it holds must be the bank's total, and the balances it holds (one
snapshot: a Transition never mixes two) must add up to it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed

from tests.reliability.bank_clients import TOTAL, SocketClient


@dataclass
class Violation:
    """A Transition that broke the invariant."""

    where: str
    detail: str


class Observer:
    """Subscribes to the total and to every balance; checks each Transition it receives."""

    def __init__(self, url: str, accounts: list[str], name: str) -> None:
        specs = [("accounts:total", {})] + [("accounts:get", {"id": a}) for a in accounts]
        self.socket = SocketClient(url, specs)
        self.accounts = accounts
        self.name = name
        self.violations: list[Violation] = []
        self.transitions = 0
        self.totals_seen = 0
        self.reconnects = 0

    async def start(self) -> None:
        """Connect and check the first Transition."""
        await self.socket.connect()
        self.check_all()

    def check_all(self) -> None:
        """Check what the current connection holds after its latest Transition."""
        c = self.socket.conn
        assert c is not None
        by_path: dict[str, Any] = {}
        held: dict[str, float] = {}
        for qid, (path, args) in self.socket.qids.items():
            mod = c.results.get(qid)
            if mod is None:
                continue
            if mod["type"] != "QueryUpdated":
                self.violations.append(Violation(self.name, f"{path} failed: {mod}"))
                continue
            if path == "accounts:total":
                by_path[path] = mod["value"]
            elif mod["value"] is not None:
                held[args["id"]] = mod["value"]["balance"]
        if "accounts:total" in by_path and by_path["accounts:total"] != TOTAL:
            self.violations.append(
                Violation(self.name, f"total {by_path['accounts:total']} != {TOTAL}")
            )
        if len(held) == len(self.accounts) and sum(held.values()) != TOTAL:
            self.violations.append(
                Violation(self.name, f"balances in one transition add up to {sum(held.values())}")
            )

    def check_transition(self, msg: dict[str, Any]) -> None:
        """Check a Transition just applied to the connection's results."""
        self.transitions += 1
        total_qids = [q for q, (p, _) in self.socket.qids.items() if p == "accounts:total"]
        for mod in msg["modifications"]:
            if mod.get("queryId") in total_qids:
                self.totals_seen += 1
        self.check_all()

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and check Transitions until `stop`, reconnecting if the socket closes."""
        while not stop.is_set():
            c = self.socket.conn
            try:
                if c is None:
                    self.reconnects += 1
                    await self.socket.connect()
                    self.check_all()
                    continue
                msg = await c.recv(timeout=0.2)
            except TimeoutError:
                continue
            except (ConnectionClosed, OSError):
                self.socket.conn = None
                continue
            if msg["type"] == "Transition":
                self.check_transition(msg)

    def holds(self) -> tuple[Any, dict[str, float]]:
        """The total and balances the observer currently holds."""
        c = self.socket.conn
        assert c is not None
        total: Any = None
        held: dict[str, float] = {}
        for qid, (path, args) in self.socket.qids.items():
            mod = c.results.get(qid)
            if mod is None or mod["type"] != "QueryUpdated":
                continue
            if path == "accounts:total":
                total = mod["value"]
            elif mod["value"] is not None:
                held[args["id"]] = mod["value"]["balance"]
        return total, held

    async def converge(self, final: dict[str, float], timeout: float = 15) -> None:
        """Receive until the observer holds `final` balances and the total (or fail)."""
        deadline = time.monotonic() + timeout
        while self.holds() != (TOTAL, final):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{self.name} holds {self.holds()}, expected {final}"
            c = self.socket.conn
            if c is None:
                await self.socket.connect()
                continue
            try:
                msg = await c.recv(timeout=min(remaining, 0.5))
            except TimeoutError:
                continue
            if msg["type"] == "Transition":
                self.check_transition(msg)


def total_values(clients: list[SocketClient]) -> list[Any]:
    """Every `accounts:total` value pushed to these clients, in every connection they had."""
    values = []
    for sc in clients:
        for c in sc.history:
            qids = {q for q, (p, _) in sc.qids.items() if p == "accounts:total"}
            for t in c.transitions:
                for mod in t["modifications"]:
                    if mod.get("queryId") in qids and mod["type"] == "QueryUpdated":
                        values.append(mod["value"])
    return values
