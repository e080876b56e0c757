"""Settings of the streaming benchmark's processes: the streaming test server's routing
and tenant resolver, with the connection handling and lease timings of production
(kept connections, no per-request health check, the core's default lease timings).
Fan-out goes over channels-redis' pub/sub layer, as in ``settings.prod``."""

from __future__ import annotations

from tests.streaming.settings import *  # noqa: F403
from tests.streaming.settings import DATABASES

DATABASES = {
    "default": {**DATABASES["default"], "CONN_MAX_AGE": None, "CONN_HEALTH_CHECKS": False}
}
CLUSTERKIT = {"EMBEDDED_RUNNER": False}
