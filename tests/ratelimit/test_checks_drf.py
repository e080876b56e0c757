"""System checks and the DRF throttle (DRF itself is not installed)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory, override_settings

from ratelimit.checks import ratelimit_check
from ratelimit.drf import PresetThrottle

from .conftest import redis_caches

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
FILES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                     "LOCATION": "/tmp/rl-check"}}  # fmt: skip


def ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return sorted(m.id for m in ratelimit_check() if m.id)


def test_clean_with_redis() -> None:
    assert ids(CACHES=redis_caches(), RATELIMIT={"CACHE": "ratelimit"}) == []


def test_no_shared_cache_and_non_atomic_cache() -> None:
    assert ids(CACHES=LOCMEM, RATELIMIT={}) == ["ratelimit.W001"]
    assert ids(CACHES=LOCMEM, RATELIMIT={"STORE": "memory"}) == []  # accepted explicitly
    assert ids(CACHES=FILES, RATELIMIT={}) == ["ratelimit.W002"]


@pytest.mark.parametrize(
    ("ratelimit", "expected"),
    [
        ({"STORE": "memory", "PRESETS": {"api": {"rate": "fast"}}}, "ratelimit.E001"),
        ({"STORE": "redis"}, "ratelimit.E002"),
        ({"STORE": "no.such.Store"}, "ratelimit.E003"),
        ({"STORE": "memory", "RULES": [{"path": "^/", "preset": "nope"}]}, "ratelimit.E004"),
        ({"STORE": "memory", "RULES": [{"preset": "api"}]}, "ratelimit.E004"),
        ({"CACHE": "missing"}, "ratelimit.E005"),
    ],
)
def test_errors(ratelimit: dict[str, Any], expected: str) -> None:
    assert ids(CACHES=LOCMEM, RATELIMIT=ratelimit) == [expected]


def test_middleware_order() -> None:
    middleware = ["ratelimit.middleware.RateLimitMiddleware",
                  "clusterkit.middleware.RequestContextMiddleware"]  # fmt: skip
    found = ids(CACHES=LOCMEM, RATELIMIT={"STORE": "memory"}, MIDDLEWARE=middleware)
    assert found == ["ratelimit.W003"]


def test_drf_throttle_without_drf() -> None:
    class View:
        throttle_preset = "tiny"

    with override_settings(RATELIMIT={"STORE": "memory", "PRESETS": {"tiny": {"rate": "1/m"}}}):
        first, second = PresetThrottle(), PresetThrottle()
        request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.99")
        assert first.allow_request(request, View()) and first.wait() is None
        assert not second.allow_request(request, View())
        assert second.wait() == pytest.approx(60, abs=0.1)
