"""``RATELIMIT["RULES"]``: which presets the middleware applies, by URL path or view."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from .conf import on_reload, ratelimit_settings


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """Apply ``presets`` to paths matching ``path`` (a regex) or to the view named ``view``."""

    presets: tuple[str, ...]
    path: re.Pattern[str] | None = None
    view: str | None = None


def build_rule(spec: Any) -> Rule:
    """A `Rule` from ``{"path": r"^/api/", "preset": "api"}`` or a ``(path, preset)`` pair."""
    if isinstance(spec, list | tuple):
        spec = {"path": spec[0], "preset": spec[1]}
    if not isinstance(spec, dict) or "preset" not in spec or not ({"path", "view"} & set(spec)):
        raise ImproperlyConfigured(f"RATELIMIT rule {spec!r} needs 'preset' and 'path' or 'view'")
    presets = spec["preset"]
    presets = (presets,) if isinstance(presets, str) else tuple(presets)
    try:
        path = re.compile(spec["path"]) if spec.get("path") else None
    except re.error as exc:
        raise ImproperlyConfigured(f"RATELIMIT rule {spec!r}: bad path regex: {exc}") from exc
    return Rule(presets=presets, path=path, view=spec.get("view"))


_rules: list[Rule] | None = None


def rules() -> list[Rule]:
    """The parsed rules (once per settings change)."""
    global _rules
    if _rules is None:
        _rules = [build_rule(spec) for spec in ratelimit_settings.RULES]
    return _rules


def _forget() -> None:
    global _rules
    _rules = None


on_reload(_forget)


def view_names(request: HttpRequest) -> set[str]:
    """The URL name, namespaced name and dotted path of the view serving ``request``."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return set()
    return {n for n in (match.url_name, match.view_name, match._func_path) if n}


def presets_for(request: HttpRequest) -> list[str]:
    """The presets of every rule that matches ``request``, in order, without repeats."""
    found: list[str] = []
    names: set[str] | None = None
    for rule in rules():
        if rule.path is not None and rule.path.search(request.path_info):
            matched = True
        elif rule.view is not None:
            names = view_names(request) if names is None else names
            matched = rule.view in names
        else:
            matched = False
        if matched:
            found.extend(p for p in rule.presets if p not in found)
    return found
