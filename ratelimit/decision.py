"""What a rate limit decision says, and the exception that carries a refusal."""

from __future__ import annotations

import dataclasses

ALLOWED = "allowed"
LIMITED = "limited"
FAILED_OPEN = "failed_open"  # the store was down and the preset fails open
FAILED_CLOSED = "failed_closed"  # the store was down and the preset fails closed
DISABLED = "disabled"  # RATELIMIT["ENABLED"] is off


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """One decision of one preset for one key (also stored in the request context)."""

    preset: str
    key: str
    allowed: bool
    limit: int
    window: float  # seconds: the rate is ``limit`` per ``window``
    burst: int
    remaining: int
    retry_after: float  # seconds until a refused request may retry, or a permit's delay
    reset: float  # seconds until the bucket is full again
    outcome: str = ALLOWED

    @property
    def limited(self) -> bool:
        """The opposite of :attr:`allowed`."""
        return not self.allowed


class RateLimited(Exception):
    """Raised (or turned into a 429 response) when a preset refuses a request."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(
            f"Rate limit {decision.preset!r} exceeded; retry after {decision.retry_after:.3f}s"
        )
        self.decision = decision
