"""Parse rates such as ``"100/m"`` or ``"5/15m"`` into a count per period."""

from __future__ import annotations

import dataclasses
import re

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)
_UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` permits per ``period`` seconds."""

    limit: int
    period: float

    @property
    def interval(self) -> float:
        """Seconds between two permits at the steady rate (GCRA's emission interval)."""
        return self.period / self.limit


def parse_rate(value: str) -> Rate:
    """``"100/m"`` → ``Rate(100, 60)``; ``"5/15m"`` → ``Rate(5, 900)``. Raises ``ValueError``."""
    match = _RATE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"Invalid rate {value!r}: expected 'N/unit' or 'N/Munit', e.g. '100/m'")
    count, multiplier, unit = match.groups()
    seconds = _UNITS.get(unit.lower())
    if seconds is None:
        raise ValueError(f"Invalid rate {value!r}: unknown unit {unit!r} (use s, m, h or d)")
    limit, period = int(count), float(multiplier or 1) * seconds
    if limit < 1 or period <= 0:
        raise ValueError(f"Invalid rate {value!r}: count and period must be positive")
    return Rate(limit, period)
