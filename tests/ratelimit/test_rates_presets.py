"""Rates parse; presets have documented defaults, can be overridden, extended, removed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from ratelimit.keys import by_user
from ratelimit.presets import get_preset
from ratelimit.rates import Rate, parse_rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/m", Rate(100, 60)),
        ("5/15m", Rate(5, 900)),
        ("10/s", Rate(10, 1)),
        ("1000 / hour", Rate(1000, 3600)),
        ("3/2d", Rate(3, 172800)),
        ("2/0.5s", Rate(2, 0.5)),
    ],
)
def test_parse_rate(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "100", "0/m", "5/0m", "x/m", "5/15y", "5/m/s"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_default_presets() -> None:
    api, auth, mfa, mutation = (get_preset(n) for n in ["api", "auth", "mfa", "mutation"])
    assert (api.rate, api.burst, api.methods) == (Rate(100, 60), 100, None)
    assert (auth.rate, auth.burst, auth.methods) == (Rate(5, 900), 5, frozenset({"POST"}))
    assert mfa.key is by_user and mfa.rate == Rate(5, 900)
    assert (mutation.rate, mutation.burst) == (Rate(60, 60), 20)
    assert not mutation.applies_to("GET") and mutation.applies_to("delete")
    assert api.interval_us == 600_000 and api.tolerance_us == 60_000_000


def test_override_extend_and_remove() -> None:
    presets = {
        "api": {"rate": "1000/m"},
        "search": {"rate": "10/s", "burst": 30, "key": "tenant", "fail_open": True},
        "mfa": None,
    }
    with override_settings(RATELIMIT={"PRESETS": presets}):
        api = get_preset("api")
        assert api.rate == Rate(1000, 60) and api.burst == 1000
        search = get_preset("search")
        assert search.burst == 30 and search.fail_open is True
        with pytest.raises(ImproperlyConfigured, match="Unknown"):
            get_preset("mfa")
    assert get_preset("api").rate == Rate(100, 60)  # reset with the setting


@pytest.mark.parametrize(
    "spec",
    [{"rate": "lots"}, {"rate": "5/m", "burst": -1}, {"rate": "5/m", "key": "nope.nope"},
     {"rate": "5/m", "color": "red"}],
)  # fmt: skip
def test_bad_presets_raise(spec: dict[str, object]) -> None:
    with override_settings(RATELIMIT={"PRESETS": {"bad": spec}}), pytest.raises(
        ImproperlyConfigured, match="'bad'"
    ):
        get_preset("bad")


def test_import_touches_no_settings_or_models() -> None:
    code = (
        "import sys, ratelimit; "
        "assert not [m for m in sys.modules if m.startswith(('django', 'ratelimit.'))], "
        "sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=settings.BASE_DIR, env={})
