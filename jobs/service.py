"""``JobService``: named job handlers, enqueued and inspected by name (sync and async)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async

from . import engine


class JobService:
    """Register handlers by name and run them as durable jobs on the cluster."""

    def register(
        self, name: str, *, max_attempts: int | None = None, retry_on: list[str] | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@service.register("send_email")`` on a sync or async function."""

        def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
            engine.handlers[name] = func
            self._defaults[name] = (max_attempts, list(retry_on or []))
            return func

        return wrap

    def __init__(self) -> None:
        self._defaults: dict[str, tuple[int | None, list[str]]] = {}

    def _new(self, name: str, payload: dict[str, Any] | None, **options: Any) -> engine.NewJob:
        if name not in engine.handlers:
            raise LookupError(f"no job handler is registered as {name!r}")
        max_attempts, retry_on = self._defaults.get(name, (None, []))
        return engine.NewJob(
            name=name, args=[], kwargs=dict(payload or {}),
            max_attempts=options.pop("max_attempts", None) or max_attempts,
            retry_on=options.pop("retry_on", None) or retry_on, **options,
        )

    def enqueue(
        self,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        run_after: dt.datetime | None = None,
        priority: int = 0,
        queue: str = "default",
        concurrency_key: str | None = None,
        concurrency_limit: int = 1,
        max_attempts: int | None = None,
    ) -> str:
        """Store a job (in the current transaction); returns its id."""
        new = self._new(
            name, payload, idempotency_key=idempotency_key, run_after=run_after,
            priority=priority, queue=queue, concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit, max_attempts=max_attempts,
        )
        return engine.enqueue_many([new])[0].id

    def enqueue_many(
        self, name: str, payloads: list[dict[str, Any]], **options: Any
    ) -> list[str]:
        """Store many jobs of one handler in one transaction."""
        news = [self._new(name, p, **dict(options)) for p in payloads]
        return [j.id for j in engine.enqueue_many(news)]

    async def aenqueue(
        self, name: str, payload: dict[str, Any] | None = None, **options: Any
    ) -> str:
        """Async :meth:`enqueue`."""
        return await sync_to_async(self.enqueue)(name, payload, **options)

    def get(self, job_id: str) -> engine.JobState:
        """The job's state: ``status``, ``attempts``, ``errors``, ``return_value``."""
        return engine.state(job_id)

    async def aget(self, job_id: str) -> engine.JobState:
        """Async :meth:`get`."""
        return await sync_to_async(engine.state)(job_id)

    cancel = staticmethod(engine.cancel)
    acancel = staticmethod(engine.acancel)
    retry = staticmethod(engine.retry)
    aretry = staticmethod(engine.aretry)


service = JobService()
