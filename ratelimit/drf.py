"""A Django REST framework throttle backed by the presets (DRF is optional).

``REST_FRAMEWORK = {"DEFAULT_THROTTLE_CLASSES": ["ratelimit.drf.PresetThrottle"]}``; a
view picks its preset with ``throttle_preset = "mutation"``. Without DRF installed this
module still imports, so the class can be referenced and tested.
"""

from __future__ import annotations

from typing import Any

from .decision import Decision
from .headers import record
from .limiter import check

try:
    from rest_framework.throttling import BaseThrottle
except ImportError:  # DRF not installed

    class BaseThrottle:  # type: ignore[no-redef]
        """Stand-in with DRF's throttle interface."""

        def allow_request(self, request: Any, view: Any) -> bool:
            raise NotImplementedError

        def wait(self) -> float | None:
            return None


class PresetThrottle(BaseThrottle):
    """Throttles with ``view.throttle_preset`` (default :attr:`preset`) via ``check``."""

    preset = "api"

    def __init__(self) -> None:
        self.decision: Decision | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        """Take a permit; DRF answers 429 with ``Retry-After`` from :meth:`wait` if refused."""
        self.decision = check(getattr(view, "throttle_preset", self.preset), request=request)
        django_request = getattr(request, "_request", request)
        if hasattr(django_request, "__dict__"):
            record(django_request, self.decision)  # RateLimitMiddleware adds the headers
        return self.decision.allowed

    def wait(self) -> float | None:
        """Seconds before the client may retry."""
        return self.decision.retry_after if self.decision and not self.decision.allowed else None
