"""Fixtures of the operations tests: runner subprocesses come from ``tests/cluster``."""

from tests.cluster.conftest import spawn

__all__ = ["spawn"]
