"""The demo's entities: bank accounts, page-view counters, a flaky mailer and reminders."""

from __future__ import annotations

import time

from clusterkit import Entity, RetryPolicy, rpc

flaky_attempts: dict[str, int] = {}


class Account(Entity):
    """A balance that only changes through persisted (durable, ordered) calls."""

    def __init__(self) -> None:
        self.balance = 0

    @rpc(persisted=True)
    async def deposit(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    @rpc(persisted=True)
    async def stamp(self, sent_at: float) -> float:
        """Returns how long after ``sent_at`` the handler started (seconds)."""
        return time.time() - sent_at

    @rpc
    async def balance_of(self) -> int:
        return self.balance


class PageViews(Entity):
    """A volatile counter: fast, in memory, gone if its runner dies."""

    def __init__(self) -> None:
        self.views = 0

    @rpc
    async def hit(self) -> int:
        self.views += 1
        return self.views


class Mailer(Entity):
    """Fails the first two attempts of every message, to show retries with backoff."""

    defect_retry_policy = RetryPolicy(max_attempts=5, base_delay=0.05, max_delay=0.5)

    @rpc(persisted=True)
    async def send_mail(self, to: str) -> str:
        tries = flaky_attempts.get(to, 0) + 1
        flaky_attempts[to] = tries
        if tries < 3:
            raise ConnectionError(f"SMTP server hiccup ({tries})")
        return f"sent to {to} on attempt {tries}"


class Reminder(Entity):
    """Handles scheduled calls; returns how late it ran."""

    @rpc(persisted=True)
    async def remind(self, due_at: float) -> float:
        return time.time() - due_at
