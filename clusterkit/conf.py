"""The ``CLUSTERKIT`` setting: one dict, read lazily so ``override_settings`` works."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Sharding
    "SHARDS_PER_GROUP": 300,
    "SHARD_GROUPS": ["default"],
    # Runner
    "EMBEDDED_RUNNER": False,
    "RUNNER_HOST": "127.0.0.1",
    "RUNNER_PORT": 0,
    "RUNNER_ADVERTISE_HOST": None,
    "RUNNER_WEIGHT": 1.0,
    "SHARD_LEASE_TTL": 6.0,
    "SHARD_LEASE_RENEW_INTERVAL": 1.5,
    "POLL_INTERVAL": 1.0,
    "CLAIM_BATCH_SIZE": 1024,
    "MAX_IN_FLIGHT": 20000,
    "READ_LEASE": 600.0,
    "COMMIT_INTERVAL": 0.0,
    "DRAIN_TIMEOUT": 10.0,
    "HANDLER_THREADS": 8,
    # Entities
    "ENTITY_MAX_IDLE_TIME": 60.0,
    "ENTITY_MAILBOX_CAPACITY": 4096,
    "MAX_RESIDENT_ENTITIES": 100_000,
    "DEFECT_RETRY_MAX_ATTEMPTS": 5,
    "DEFECT_RETRY_BASE_DELAY": 0.1,
    "DEFECT_RETRY_MAX_DELAY": 10.0,
    # Calls
    "CALL_TIMEOUT": 30.0,
    "MAX_PAYLOAD_BYTES": 1_048_576,
    "REPLY_POLL_INTERVAL": 0.2,
    # Request context
    "TRUSTED_PROXIES": [],
    "TENANT_RESOLVER": None,
    "REQUEST_ID_HEADER": "X-Request-ID",
    # Operations
    "METRICS_PORT": None,
    "METRICS_ADDRESS": "127.0.0.1",
    "METRICS_CLUSTER_COLLECTOR": True,
    "TRACING": True,
    # Retention
    "RETENTION": 7 * 24 * 3600.0,
    "PRUNE_INTERVAL": 3600.0,
}


class ClusterSettings:
    """Attribute access to ``settings.CLUSTERKIT`` merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        """The project's own ``CLUSTERKIT`` dict (empty when unset or not a dict, which
        ``manage.py check`` reports as ``clusterkit.E001``)."""
        value = getattr(django_settings, "CLUSTERKIT", None) or {}
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown clusterkit setting {name!r}")
        if self._cache is None:
            self._cache = {**DEFAULTS, **self.user_settings}
        return self._cache[name]

    def reload(self) -> None:
        """Forget the cached values (called when ``CLUSTERKIT`` changes in tests)."""
        self._cache = None


cluster_settings = ClusterSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "CLUSTERKIT":
        cluster_settings.reload()


setting_changed.connect(_reload)
