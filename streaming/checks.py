"""System checks of the streaming app (ids ``streaming.E0xx`` / ``streaming.W0xx``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string

from .conf import DEFAULTS, streaming_settings


@register()
def check_streaming(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``STREAMING`` is sane, and a channel layer fit for fan-out is configured."""
    raw = getattr(settings, "STREAMING", None) or {}
    if not isinstance(raw, dict):
        return [Error("settings.STREAMING must be a dict.", id="streaming.E001")]
    errors: list[CheckMessage] = [
        Error(f"Unknown key {key!r} in settings.STREAMING.", id="streaming.E002")
        for key in raw
        if key not in DEFAULTS
    ]
    alias = streaming_settings.CHANNEL_LAYER
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if alias not in layers:
        errors.append(
            Error(
                f"No channel layer {alias!r} is configured: streams cannot reach subscribers "
                "in other processes.",
                hint="Configure CHANNEL_LAYERS (channels_redis in production).",
                id="streaming.E003",
            )
        )
    else:
        backend = str(layers[alias].get("BACKEND", ""))
        engine = str(settings.DATABASES.get("default", {}).get("ENGINE", ""))
        if backend.endswith("InMemoryChannelLayer") and "sqlite" not in engine:
            errors.append(
                Warning(
                    "The in-memory channel layer reaches only this process, but the database "
                    "is shared: subscribers of other processes get events late (only from "
                    "the log, at the tail check) or not at all.",
                    hint="Use channels_redis.core.RedisChannelLayer.",
                    id="streaming.W001",
                )
            )
    for key in ("AUTHORIZE", "TENANT_RESOLVER"):
        value = streaming_settings.__getattr__(key)
        if isinstance(value, str):
            try:
                import_string(value)
            except ImportError as exc:
                errors.append(
                    Error(f"STREAMING[{key!r}] cannot be imported: {exc}", id="streaming.E004")
                )
        elif value is not None and not callable(value):
            errors.append(Error(f"STREAMING[{key!r}] must be callable.", id="streaming.E004"))
    for key in ("RETENTION_COUNT", "PRUNE_EVERY", "SUBSCRIBER_BUFFER", "REPLAY_BATCH"):
        value = streaming_settings.__getattr__(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(
                Error(f"STREAMING[{key!r}] must be a positive int.", id="streaming.E005")
            )
    for key in ("HEARTBEAT_INTERVAL", "TAIL_CHECK_DELAY", "GROUP_REFRESH"):
        value = streaming_settings.__getattr__(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            errors.append(
                Error(f"STREAMING[{key!r}] must be a positive number.", id="streaming.E006")
            )
    age = streaming_settings.RETENTION_AGE
    if age is not None and (not isinstance(age, int | float) or age <= 0):
        errors.append(
            Error("STREAMING['RETENTION_AGE'] must be positive seconds or None.",
                  id="streaming.E007")
        )
    return errors
