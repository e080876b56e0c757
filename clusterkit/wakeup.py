"""In-process wake-ups: a runner in this process hears of new messages at once.

Across processes PostgreSQL's ``NOTIFY`` does the same; on SQLite a runner in another
process falls back to polling every ``CLUSTERKIT["POLL_INTERVAL"]``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

_lock = threading.Lock()
_listeners: list[Callable[[Iterable[str]], None]] = []


def subscribe(callback: Callable[[Iterable[str]], None]) -> Callable[[], None]:
    """Call ``callback(groups)`` whenever messages for ``groups`` were committed here."""
    with _lock:
        _listeners.append(callback)

    def unsubscribe() -> None:
        with _lock:
            if callback in _listeners:
                _listeners.remove(callback)

    return unsubscribe


def wake_local(groups: Iterable[str]) -> None:
    """Tell this process's runners that ``groups`` have new messages."""
    with _lock:
        listeners = list(_listeners)
    for callback in listeners:
        callback(groups)
