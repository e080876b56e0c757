"""Named limits (``api``, ``auth``, ``mfa``, ``mutation`` and the project's own)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import on_reload, ratelimit_settings
from .keys import BUILTIN, KeyFunc
from .rates import Rate, parse_rate

UNSAFE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]

DEFAULT_PRESETS: dict[str, dict[str, Any]] = {
    "api": {"rate": "100/m", "key": "ip"},
    "auth": {"rate": "5/15m", "key": "ip", "methods": ["POST"]},
    "mfa": {"rate": "5/15m", "key": "user", "methods": ["POST"]},
    "mutation": {"rate": "60/m", "burst": 20, "key": "user", "methods": UNSAFE_METHODS},
}
PRESET_KEYS = {"rate", "burst", "key", "methods", "fail_open"}


@dataclasses.dataclass(frozen=True, slots=True)
class Preset:
    """A parsed preset: its rate, burst, key function and failure policy."""

    name: str
    rate: Rate
    burst: int
    key: KeyFunc
    methods: frozenset[str] | None = None
    fail_open: bool | None = None  # None: the global ``FAIL_OPEN``
    interval_us: int = dataclasses.field(init=False)
    tolerance_us: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        interval = max(1, round(self.rate.interval * 1_000_000))
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "tolerance_us", interval * self.burst)

    def applies_to(self, method: str | None) -> bool:
        """Whether a request with this HTTP method counts (``None``: not a request)."""
        return self.methods is None or method is None or method.upper() in self.methods


def build_preset(name: str, spec: Mapping[str, Any]) -> Preset:
    """A :class:`Preset` from its settings dict; ``ImproperlyConfigured`` if it does not parse."""
    try:
        unknown = set(spec) - PRESET_KEYS
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        rate = parse_rate(spec.get("rate", ""))
        burst = int(spec.get("burst") or rate.limit)
        if burst < 1:
            raise ValueError("burst must be at least 1")
        key: Any = spec.get("key", "ip")
        if isinstance(key, str):
            key = BUILTIN[key] if key in BUILTIN else import_string(key)
        if not callable(key):
            raise ValueError(f"key {key!r} is not callable")
        methods = spec.get("methods")
        fail_open = spec.get("fail_open")
        return Preset(
            name=name,
            rate=rate,
            burst=burst,
            key=key,
            methods=frozenset(m.upper() for m in methods) if methods else None,
            fail_open=None if fail_open is None else bool(fail_open),
        )
    except (ValueError, TypeError, ImportError) as exc:
        raise ImproperlyConfigured(f"RATELIMIT preset {name!r}: {exc}") from exc


def preset_specs() -> dict[str, dict[str, Any]]:
    """The defaults with ``RATELIMIT["PRESETS"]`` merged in, key by key (``None`` removes one)."""
    specs = {name: dict(spec) for name, spec in DEFAULT_PRESETS.items()}
    for name, spec in (ratelimit_settings.PRESETS or {}).items():
        if spec is None:
            specs.pop(name, None)
        else:
            specs[name] = {**specs.get(name, {}), **spec}
    return specs


_cache: dict[str, Preset] = {}


def get_preset(preset: str | Preset) -> Preset:
    """The preset called ``preset`` (parsed once per settings change)."""
    if isinstance(preset, Preset):
        return preset
    found = _cache.get(preset)
    if found is None:
        specs = preset_specs()
        if preset not in specs:
            raise ImproperlyConfigured(f"Unknown rate limit preset {preset!r}")
        found = _cache[preset] = build_preset(preset, specs[preset])
    return found


on_reload(_cache.clear)
