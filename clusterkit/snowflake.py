"""Snowflake ids: ``(ms since 2025-01-01) << 22 | machine_id << 12 | sequence``.

64-bit, sortable by creation time, unique across runners as long as each process has
its own 10-bit machine id (a runner takes it from its ``Runner`` row). Monotonic in one
process even when the wall clock steps back: the generator then keeps counting on its
last millisecond, and moves on to the next one when 4096 ids were issued in it.
"""

from __future__ import annotations

import os
import threading
import time

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MACHINE_BITS = 10
SEQUENCE_BITS = 12
MAX_MACHINE = (1 << MACHINE_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1


class SnowflakeGenerator:
    """Thread-safe generator of snowflake ids for one machine id."""

    def __init__(self, machine_id: int, clock: object = None) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._sequence = 0
        self._clock = clock if callable(clock) else (lambda: time.time_ns() // 1_000_000)
        self.machine_id = machine_id

    @property
    def machine_id(self) -> int:
        """The 10-bit machine id stamped into every id."""
        return self._machine_id

    @machine_id.setter
    def machine_id(self, value: int) -> None:
        self._machine_id = value & MAX_MACHINE

    def next_id(self) -> int:
        """A new id, greater than every id this generator returned before."""
        with self._lock:
            now = int(self._clock()) - EPOCH_MS  # type: ignore[operator]
            if now > self._last_ms:
                self._last_ms, self._sequence = now, 0
            elif self._sequence < MAX_SEQUENCE:
                self._sequence += 1
            else:
                self._last_ms, self._sequence = self._last_ms + 1, 0
            return (self._last_ms << 22) | (self._machine_id << 12) | self._sequence

    def next_ids(self, count: int) -> list[int]:
        """``count`` new ids in increasing order."""
        return [self.next_id() for _ in range(count)]


def timestamp_ms(snowflake: int) -> int:
    """The Unix time in milliseconds at which ``snowflake`` was made."""
    return (snowflake >> 22) + EPOCH_MS


def lowest_id_at(unix_ms: int) -> int:
    """The smallest id that could have been made at ``unix_ms`` (for range queries)."""
    return max(0, unix_ms - EPOCH_MS) << 22


def machine_of(snowflake: int) -> int:
    """The machine id stamped into ``snowflake``."""
    return (snowflake >> SEQUENCE_BITS) & MAX_MACHINE


# Processes that are not runners (web workers, commands) start with a random machine id;
# a runner replaces it with the one its registration row gives it.
generator = SnowflakeGenerator(int.from_bytes(os.urandom(2), "big"))


def next_id() -> int:
    """A new id from this process's generator."""
    return generator.next_id()
