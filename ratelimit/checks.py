"""System checks: presets that do not parse, a store that cannot work, per-process limits.

Errors ``ratelimit.E001``…``E005`` and warnings ``ratelimit.W001``…``W003`` (see
docs/ratelimit.md for each id).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .conf import ratelimit_settings
from .presets import build_preset, preset_specs
from .rules import build_rule
from .stores import build_store, is_django_redis

LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
CONTEXT_MIDDLEWARE = "clusterkit.middleware.RequestContextMiddleware"
OUR_MIDDLEWARE = "ratelimit.middleware.RateLimitMiddleware"


def check_presets() -> list[checks.CheckMessage]:
    """E001: every preset parses."""
    errors: list[checks.CheckMessage] = []
    for name, spec in preset_specs().items():
        try:
            build_preset(name, spec)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id="ratelimit.E001"))
    return errors


def check_rules() -> list[checks.CheckMessage]:
    """E004: every rule parses and names known presets."""
    known = set(preset_specs())
    errors: list[checks.CheckMessage] = []
    for spec in ratelimit_settings.RULES:
        try:
            rule = build_rule(spec)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id="ratelimit.E004"))
            continue
        errors.extend(
            checks.Error(f"RATELIMIT rule {spec!r} names unknown preset {p!r}", id="ratelimit.E004")
            for p in rule.presets
            if p not in known
        )
    return errors


def check_store() -> list[checks.CheckMessage]:
    """E002/E003/E005 and W001/W002: the store can work, and whether it is shared."""
    alias = ratelimit_settings.CACHE
    choice: Any = ratelimit_settings.STORE
    if alias not in settings.CACHES:
        return [checks.Error(f"RATELIMIT['CACHE'] {alias!r} is not in CACHES", id="ratelimit.E005")]
    backend = str(settings.CACHES[alias].get("BACKEND", ""))
    if choice == "redis" and not is_django_redis(alias):
        return [
            checks.Error(
                f"RATELIMIT['STORE'] is 'redis' but cache {alias!r} uses {backend}",
                hint="Configure the cache with django_redis.cache.RedisCache.",
                id="ratelimit.E002",
            )
        ]
    if choice not in (None, "redis", "memory"):
        try:
            build_store()
        except (ImportError, ImproperlyConfigured, TypeError) as exc:
            return [checks.Error(f"RATELIMIT['STORE'] {choice!r}: {exc}", id="ratelimit.E003")]
    if choice is not None or is_django_redis(alias):
        return []
    if backend in LOCAL_CACHES:
        return [
            checks.Warning(
                f"No shared cache: cache {alias!r} is {backend}, so rate limits are kept "
                "per process.",
                hint="Use django-redis in production, or set RATELIMIT['STORE'] = 'memory' "
                "to accept per-process limits.",
                id="ratelimit.W001",
            )
        ]
    return [
        checks.Warning(
            f"Cache {alias!r} ({backend}) cannot run an atomic limiter script, so rate "
            "limits are kept per process.",
            hint="Use django_redis.cache.RedisCache for shared, atomic limits.",
            id="ratelimit.W002",
        )
    ]


def check_middleware() -> list[checks.CheckMessage]:
    """W003: the rate limit middleware runs after the request context middleware."""
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if OUR_MIDDLEWARE in middleware and (
        CONTEXT_MIDDLEWARE not in middleware
        or middleware.index(CONTEXT_MIDDLEWARE) > middleware.index(OUR_MIDDLEWARE)
    ):
        return [
            checks.Warning(
                f"{OUR_MIDDLEWARE} should come after {CONTEXT_MIDDLEWARE}",
                hint="Without it the client IP ignores TRUSTED_PROXIES and the tenant is unknown.",
                id="ratelimit.W003",
            )
        ]
    return []


def ratelimit_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """All checks of the ratelimit app (registered from ``RatelimitConfig.ready``)."""
    return check_presets() + check_rules() + check_store() + check_middleware()
