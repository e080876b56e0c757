"""Prometheus metrics of the limiter and the circuit breakers (label children cached).

The rest of the cluster's metrics are in :mod:`clusterkit.metrics`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from clusterkit.metrics import child as _child

DECISIONS = Counter(
    "clusterkit_ratelimit_decisions",
    "Rate limit decisions by preset and outcome.",
    ["preset", "outcome"],
)
STORE_ERRORS = Counter(
    "clusterkit_ratelimit_store_errors",
    "Rate limit decisions the store could not answer (the failure policy applied).",
    ["preset"],
)
BREAKER_STATE = Gauge(
    "clusterkit_circuit_breaker_state",
    "State of each circuit breaker: 0 closed, 1 half-open, 2 open.",
    ["breaker"],
)
BREAKER_CALLS = Counter(
    "clusterkit_circuit_breaker_calls",
    "Calls through each circuit breaker by outcome (success, failure, rejected).",
    ["breaker", "outcome"],
)
STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}


def count_decision(preset: str, outcome: str) -> None:
    """One more decision of ``preset`` with ``outcome``."""
    _child(DECISIONS, preset, outcome).inc()


def count_store_error(preset: str) -> None:
    """One more decision that fell back on the failure policy."""
    _child(STORE_ERRORS, preset).inc()


def set_breaker_state(name: str, state: str) -> None:
    """Publish the state of breaker ``name``."""
    _child(BREAKER_STATE, name).set(STATE_VALUES.get(state, -1))


def count_breaker_call(name: str, outcome: str) -> None:
    """One more call through breaker ``name``."""
    _child(BREAKER_CALLS, name, outcome).inc()
