"""clusterkit's ratelimit app: GCRA limits in Redis (or in process) and circuit breakers.

The public names are loaded on first use, so importing ``ratelimit`` while apps load
touches neither settings nor models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .breaker import breaker
    from .decision import Decision, RateLimited
    from .decorators import rate_limit
    from .durable import apermit_delay, permit_delay
    from .limiter import acheck, check

_EXPORTS = {
    "check": "limiter",
    "acheck": "limiter",
    "rate_limit": "decorators",
    "Decision": "decision",
    "RateLimited": "decision",
    "permit_delay": "durable",
    "apermit_delay": "durable",
    "breaker": "breaker",
}
__all__ = [
    "Decision",
    "RateLimited",
    "acheck",
    "apermit_delay",
    "breaker",
    "check",
    "permit_delay",
    "rate_limit",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ratelimit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
