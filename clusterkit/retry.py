"""Retry policies for handler defects: exponential backoff with full jitter."""

from __future__ import annotations

import dataclasses
import random

from .conf import cluster_settings


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Up to ``max_attempts`` tries; the n-th retry waits ~``base_delay * factor**n``."""

    max_attempts: int = 5
    base_delay: float = 0.1
    factor: float = 2.0
    max_delay: float = 10.0
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.max_delay, self.base_delay * self.factor ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling

    @classmethod
    def default(cls) -> RetryPolicy:
        """The policy from ``CLUSTERKIT["DEFECT_RETRY_*"]``."""
        return cls(
            max_attempts=cluster_settings.DEFECT_RETRY_MAX_ATTEMPTS,
            base_delay=cluster_settings.DEFECT_RETRY_BASE_DELAY,
            max_delay=cluster_settings.DEFECT_RETRY_MAX_DELAY,
        )
