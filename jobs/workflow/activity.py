"""Activities: the steps of a workflow whose results are persisted.

``@activity`` wraps a sync or async function. Called inside a workflow it runs at most
until one attempt succeeds, retried with backoff by its :class:`~clusterkit.RetryPolicy`;
every attempt is recorded on the step (and is a tracing span, ``activity <name>``), and
the result is stored, so a replay returns it without running the function again. Called
outside a workflow it is a plain call.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
import typing
from collections.abc import Callable
from typing import Any

import msgspec

from clusterkit import RetryPolicy, tracing
from jobs.engine import in_thread

from . import history, replay
from .conf import workflow_settings
from .errors import ActivityFailed
from .models import ACTIVITY, DONE, ERROR, RETRYING

activities: dict[str, Activity] = {}


def error_text(exc: BaseException) -> tuple[str, str]:
    """An exception's class path and its traceback (bounded)."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return kind, "".join(traceback.format_exception(exc))[-8000:]


def decode(value: Any, hint: Any) -> Any:
    """A stored JSON value as the type the function is annotated to return."""
    if hint is Any or hint is None or value is None:
        return value
    try:
        return msgspec.convert(value, hint, strict=False)
    except (msgspec.ValidationError, TypeError):
        return value


async def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a sync (on a thread) or async function."""
    if inspect.iscoroutinefunction(func):
        return await func(*args, **kwargs)
    return await in_thread(func, *args, **kwargs)


class Activity:
    """A registered activity: its function, retry policy and optional compensation."""

    def __init__(
        self, func: Callable[..., Any], name: str, retry: RetryPolicy | int | None
    ) -> None:
        self.func = func
        self.name = name
        self._retry = retry
        self.compensate: Callable[..., Any] | None = None
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    def compensation(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: ``func(result, *args, **kwargs)`` undoes this activity when the
        workflow finally fails or is cancelled."""
        self.compensate = func
        return func

    def policy(self) -> RetryPolicy:
        """The retry policy (``WORKFLOWS["ACTIVITY_*"]`` when none or a count is given)."""
        if isinstance(self._retry, RetryPolicy):
            return self._retry
        attempts = workflow_settings.ACTIVITY_MAX_ATTEMPTS if self._retry is None else self._retry
        return RetryPolicy(
            max_attempts=int(attempts),
            base_delay=float(workflow_settings.ACTIVITY_BACKOFF_BASE),
            max_delay=float(workflow_settings.ACTIVITY_BACKOFF_MAX),
        )

    @property
    def return_hint(self) -> Any:
        try:
            return typing.get_type_hints(self.func).get("return", Any)
        except Exception:
            return Any

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        run = replay.current()
        if run is None:
            return self.func(*args, **kwargs)
        return replay.dual(self.run, run, args, kwargs)

    async def run(self, run: replay.Replay, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The activity as a step of ``run``: the stored outcome, or attempts until one works."""
        seq, row = run.step(ACTIVITY, self.name)
        hint = self.return_hint
        if row is not None and row.state == DONE:
            return decode(row.result, hint)
        if row is not None and row.state == ERROR:
            raise ActivityFailed(self.name, row.error_type, row.error.splitlines()[-1:][0]
                                 if row.error else "")
        attempts: list[dict[str, Any]] = list(row.attempts) if row is not None else []
        stored_args = msgspec.to_builtins(list(args))
        stored_kwargs = msgspec.to_builtins(kwargs)
        policy = self.policy()
        while True:
            number = len(attempts) + 1
            started = time.time()
            try:
                with tracing.span(f"activity {self.name}", {
                    "workflow.execution_id": run.execution_id, "workflow.activity": self.name,
                    "workflow.activity.attempt": number,
                }):
                    value = msgspec.to_builtins(await call(self.func, *args, **kwargs))
            except Exception as exc:
                kind, text = error_text(exc)
                attempts.append({"attempt": number, "started": started,
                                 "finished": time.time(), "error": f"{kind}: {exc}"[:2000]})
                final = number >= policy.max_attempts
                row = run.keep(await run.db(
                    history.save_step, run.execution_id, seq, ACTIVITY, self.name, row,
                    state=ERROR if final else RETRYING, attempts=attempts, args=stored_args,
                    kwargs=stored_kwargs, error_type=kind, error=text,
                ))
                if row.state == DONE:  # another replay of this step stored a result first
                    return decode(row.result, hint)
                if final:
                    raise ActivityFailed(self.name, kind, str(exc)) from exc
                await asyncio.sleep(policy.delay(number))
                continue
            attempts.append({"attempt": number, "started": started, "finished": time.time()})
            row = run.keep(await run.db(
                history.save_step, run.execution_id, seq, ACTIVITY, self.name, row,
                state=DONE, attempts=attempts, args=stored_args, kwargs=stored_kwargs,
                result=value, error_type="", error="",
            ))
            if row.state == ERROR:
                raise ActivityFailed(self.name, row.error_type, row.error)
            return decode(row.result, hint)


@typing.overload
def activity(func: Callable[..., Any], /) -> Activity: ...
@typing.overload
def activity(
    *, name: str | None = None, retry: RetryPolicy | int | None = None
) -> Callable[[Callable[..., Any]], Activity]: ...


def activity(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | int | None = None,
) -> Activity | Callable[[Callable[..., Any]], Activity]:
    """``@activity`` or ``@activity(name=..., retry=RetryPolicy(...) or max attempts)``."""

    def wrap(f: Callable[..., Any]) -> Activity:
        act = Activity(f, name or f"{f.__module__}.{f.__qualname__}", retry)
        activities[act.name] = act
        return act

    return wrap(func) if func is not None else wrap
