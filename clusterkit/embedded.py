"""The embedded runner: a runner on a background thread of this very process.

Used by the embedded default (``CLUSTERKIT["EMBEDDED_RUNNER"] = True``): the first call
to an entity starts it, so ``runserver`` or a management command hosts its entities
with no separate ``runworker``.
"""

from __future__ import annotations

import asyncio
import threading

from .errors import RunnerUnavailable
from .runner import Runner

_lock = threading.Lock()
_runner: Runner | None = None
_thread: threading.Thread | None = None


def ensure_started(timeout: float = 30.0) -> Runner:
    """Start the embedded runner if it is not running, and wait until it holds its shards."""
    global _runner, _thread
    with _lock:
        if _runner is None or _thread is None or not _thread.is_alive():
            runner = Runner()
            thread = threading.Thread(
                target=lambda: asyncio.run(runner.run()), name="clusterkit-runner", daemon=True
            )
            thread.start()
            _runner, _thread = runner, thread
        runner = _runner
    if not runner.ready.wait(timeout):
        raise RunnerUnavailable("the embedded runner did not start in time")
    return runner


def stop(timeout: float = 30.0) -> None:
    """Drain and stop the embedded runner (at exit, or between tests)."""
    global _runner, _thread
    with _lock:
        runner, thread = _runner, _thread
        _runner = _thread = None
    if runner is not None and thread is not None:
        runner.stop()
        thread.join(timeout)
