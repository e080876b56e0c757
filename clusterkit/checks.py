"""System checks for the clusterkit core (ids ``clusterkit.E0xx`` / ``clusterkit.W0xx``)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from .conf import DEFAULTS, cluster_settings


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``CLUSTERKIT`` is a dict of known keys with sane values."""
    raw = getattr(settings, "CLUSTERKIT", None) or {}
    if not isinstance(raw, dict):
        return [Error("settings.CLUSTERKIT must be a dict.", id="clusterkit.E001")]
    errors: list[CheckMessage] = []
    for key in raw:
        if key not in DEFAULTS:
            errors.append(
                Error(f"Unknown key {key!r} in settings.CLUSTERKIT.", id="clusterkit.E002")
            )
    shards = cluster_settings.SHARDS_PER_GROUP
    if not isinstance(shards, int) or not 1 <= shards <= 100_000:
        errors.append(
            Error("CLUSTERKIT['SHARDS_PER_GROUP'] must be an int in 1..100000.",
                  id="clusterkit.E003")
        )
    groups = cluster_settings.SHARD_GROUPS
    if not groups or not all(isinstance(g, str) and g for g in groups):
        errors.append(
            Error("CLUSTERKIT['SHARD_GROUPS'] must be a non-empty list of names.",
                  id="clusterkit.E004")
        )
    ttl, renew = cluster_settings.SHARD_LEASE_TTL, cluster_settings.SHARD_LEASE_RENEW_INTERVAL
    if renew * 2 > ttl:
        errors.append(
            Error(
                "CLUSTERKIT['SHARD_LEASE_RENEW_INTERVAL'] must be at most half of SHARD_LEASE_TTL,"
                " or leases expire between renewals.",
                id="clusterkit.E005",
            )
        )
    for key in ("RETENTION", "PRUNE_INTERVAL"):
        value = getattr(cluster_settings, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors.append(
                Error(f"CLUSTERKIT[{key!r}] must be a positive number of seconds.",
                      id="clusterkit.E006")
            )
    return errors


@register()
def check_app_order(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Channels (or daphne) listed before clusterkit would shadow ``runworker``."""
    names = [config.name for config in apps.get_app_configs()]
    mine = names.index("clusterkit")
    shadowing = [n for n in ("channels", "daphne") if n in names and names.index(n) < mine]
    if shadowing:
        return [
            Warning(
                f"{', '.join(shadowing)} is listed before clusterkit in INSTALLED_APPS, so its "
                "runworker command shadows clusterkit's.",
                hint="Put 'clusterkit' above 'daphne' and 'channels' in INSTALLED_APPS.",
                id="clusterkit.W001",
            )
        ]
    return []


@register()
def check_embedded_database(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """An embedded runner on a shared database makes every web process a runner."""
    vendor = str(settings.DATABASES.get("default", {}).get("ENGINE", ""))
    if cluster_settings.EMBEDDED_RUNNER and "sqlite" not in vendor:
        return [
            Warning(
                "CLUSTERKIT['EMBEDDED_RUNNER'] is on with a shared database: every web process "
                "will also run a runner.",
                hint="Turn it off and run 'manage.py runworker' processes instead.",
                id="clusterkit.W002",
            )
        ]
    return []


@register()
def check_operations(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The metrics server's port and address; tracing asked for without OpenTelemetry."""
    errors: list[CheckMessage] = []
    port = cluster_settings.METRICS_PORT
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 0 <= port <= 65535):  # fmt: skip
        errors.append(
            Error("CLUSTERKIT['METRICS_PORT'] must be None or a port number in 0..65535.",
                  id="clusterkit.E007")
        )
    address = cluster_settings.METRICS_ADDRESS
    if not isinstance(address, str) or not address:
        errors.append(
            Error("CLUSTERKIT['METRICS_ADDRESS'] must be a host name or IP address.",
                  id="clusterkit.E008")
        )
    from . import tracing

    if "TRACING" in cluster_settings.user_settings and cluster_settings.TRACING and (
        not tracing.available()
    ):
        errors.append(
            Warning(
                "CLUSTERKIT['TRACING'] is on but OpenTelemetry is not installed: no spans are "
                "made.",
                hint="pip install 'django-clusterkit[otel]' (opentelemetry-api and -sdk).",
                id="clusterkit.W003",
            )
        )
    if "django_prometheus" in settings.INSTALLED_APPS:
        names = [str(m) for m in settings.MIDDLEWARE]
        before = "django_prometheus.middleware.PrometheusBeforeMiddleware"
        after = "django_prometheus.middleware.PrometheusAfterMiddleware"
        if (before in names) != (after in names) or (
            before in names and not (names.index(before) == 0 and names[-1] == after)
        ):
            errors.append(
                Warning(
                    "django-prometheus's middleware must come in a pair: "
                    "PrometheusBeforeMiddleware first in MIDDLEWARE, PrometheusAfterMiddleware "
                    "last.",
                    id="clusterkit.W004",
                )
            )
    return errors
