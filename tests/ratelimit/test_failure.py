"""Redis stopped mid-test: fail closed by default, open by setting, logged, counted, no 500."""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from prometheus_client import REGISTRY

from clusterkit.middleware import RequestContextMiddleware
from ratelimit import acheck, check, permit_delay, rate_limit
from ratelimit.decision import FAILED_CLOSED, FAILED_OPEN
from ratelimit.middleware import RateLimitMiddleware

from .conftest import redis_limits

PRESETS = {"closed": {"rate": "100/m"}, "open": {"rate": "100/m", "fail_open": True}}
RULES = [("^/closed", "closed"), ("^/open", "open")]
rf = RequestFactory()


def view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@rate_limit("closed")
async def aview(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def errors(preset: str) -> float:
    value = REGISTRY.get_sample_value("clusterkit_ratelimit_store_errors_total", {"preset": preset})
    return value or 0.0


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


async def test_redis_stopped_mid_test(
    throwaway_redis: tuple[str, subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    url, proc = throwaway_redis
    app: Any = RequestContextMiddleware(RateLimitMiddleware(view))
    with redis_limits(url, PRESETS=PRESETS, RULES=RULES, FAILURE_RETRY_AFTER=7):
        assert app(rf.get("/closed")).status_code == 200
        assert (await acheck("closed", "k")).allowed
        assert app(rf.get("/open")).status_code == 200
        before = errors("closed")

        stop(proc)
        caplog.set_level(logging.WARNING, logger="clusterkit.ratelimit")
        started = time.monotonic()
        closed = app(rf.get("/closed"))
        assert closed.status_code == 429 and closed["Retry-After"] == "7"
        assert "RateLimit" not in closed  # no quota is known without the store
        opened = app(rf.get("/open"))
        assert opened.status_code == 200
        assert check("closed", "k").outcome == FAILED_CLOSED
        assert check("open", "k").outcome == FAILED_OPEN
        assert (await acheck("closed", "k")).outcome == FAILED_CLOSED
        assert (await acheck("open", "k")).allowed
        assert (await aview(rf.get("/"))).status_code == 429
        assert permit_delay("open", "k") == 0.0
        assert time.monotonic() - started < 10
        assert errors("closed") >= before + 4
        assert "failing closed" in caplog.text and "failing open" in caplog.text


def test_fail_open_globally(throwaway_redis: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = throwaway_redis
    with redis_limits(url, FAIL_OPEN=True, PRESETS={"x": {"rate": "1/m"}}):
        stop(proc)
        assert check("x", "k").allowed
        with redis_limits(url, FAIL_OPEN=True, PRESETS={"x": {"rate": "1/m", "fail_open": False}}):
            assert not check("x", "k").allowed
