"""``@workflow``: a function whose progress survives crashes, restarts and long waits.

Each execution is an entity (``jobs.Workflow``, keyed by the execution id) driven by
persisted messages: starting it stores the execution and its first message; sleeps,
signals, children and cancellation store more. Every message makes the body replay from
the top against the stored history.
"""

from __future__ import annotations

import hashlib
import inspect
import typing
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured

from . import history
from .activity import decode
from .handle import WorkflowHandle
from .models import WorkflowExecution

workflows: dict[str, Workflow] = {}
KeySpec = str | Callable[..., str] | None


def execution_id_for(name: str, key: str) -> str:
    """The execution id of workflow ``name`` started with idempotency key ``key``."""
    return hashlib.sha256(f"{name}\0{key}".encode()).hexdigest()[:32]


class Workflow:
    """A registered workflow: start it, or look at one of its executions."""

    def __init__(self, func: Callable[..., Any], name: str, idempotency_key: KeySpec) -> None:
        self.func = func
        self.name = name
        self.idempotency_key = idempotency_key
        self.signature = inspect.signature(func)
        self.is_async = inspect.iscoroutinefunction(func)
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    def key_for(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The idempotency key of a start: from the decorator's template or callable, or
        a new random one (every start is a new execution)."""
        spec = self.idempotency_key
        if spec is None:
            return uuid.uuid4().hex
        if callable(spec):
            return str(spec(*args, **kwargs))
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return spec.format(**bound.arguments)

    def store(
        self, execution_id: str, key: str, args: tuple[Any, ...], kwargs: dict[str, Any],
        parent: str = "",
    ) -> WorkflowHandle:
        """Store the execution (unless it exists) and its first message."""
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"workflow {self.name}: {exc}") from None
        row = WorkflowExecution(
            id=execution_id, name=self.name, idempotency_key=key[:255],
            args=msgspec.to_builtins(list(args)), kwargs=msgspec.to_builtins(kwargs),
            parent=parent,
        )
        history.start(row)
        return WorkflowHandle(execution_id, self)

    def start(self, *args: Any, **kwargs: Any) -> WorkflowHandle:
        """Start an execution (the same idempotency key gives the same one); its handle."""
        key = self.key_for(args, kwargs)
        return self.store(execution_id_for(self.name, key), key, args, kwargs)

    async def astart(self, *args: Any, **kwargs: Any) -> WorkflowHandle:
        """Async :meth:`start`."""
        return await sync_to_async(self.start)(*args, **kwargs)

    def with_key(self, key: str) -> _Keyed:
        """Start with an explicit idempotency key: ``wf.with_key("order-7").start(...)``."""
        return _Keyed(self, key)

    def handle(self, execution_id: str) -> WorkflowHandle:
        """The handle of an existing execution."""
        return WorkflowHandle(execution_id, self)

    def decode_result(self, value: Any) -> Any:
        try:
            hint = typing.get_type_hints(self.func).get("return", Any)
        except Exception:
            hint = Any
        return decode(value, hint)

    async def invoke(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run the body once (a replay)."""
        from jobs.engine import in_thread

        if self.is_async:
            return await self.func(*args, **kwargs)
        return await in_thread(self.func, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside a workflow: run as a child workflow (awaitable); outside: a plain call."""
        from . import children, replay

        if replay.current() is None:
            return self.func(*args, **kwargs)
        return children.child(self, *args, **kwargs)


class _Keyed:
    def __init__(self, wf: Workflow, key: str) -> None:
        self.wf, self.key = wf, key

    def start(self, *args: Any, **kwargs: Any) -> WorkflowHandle:
        return self.wf.store(execution_id_for(self.wf.name, self.key), self.key, args, kwargs)

    async def astart(self, *args: Any, **kwargs: Any) -> WorkflowHandle:
        return await sync_to_async(self.start)(*args, **kwargs)


@typing.overload
def workflow(func: Callable[..., Any], /) -> Workflow: ...
@typing.overload
def workflow(
    *, name: str | None = None, idempotency_key: KeySpec = None
) -> Callable[[Callable[..., Any]], Workflow]: ...


def workflow(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    idempotency_key: KeySpec = None,
) -> Workflow | Callable[[Callable[..., Any]], Workflow]:
    """``@workflow(name="checkout", idempotency_key="order-{order_id}")`` on a function.

    ``idempotency_key`` is a format string over the arguments, or a callable taking the
    arguments; without one every start is a new execution.
    """

    def wrap(f: Callable[..., Any]) -> Workflow:
        wf = Workflow(f, name or f"{f.__module__}.{f.__qualname__}", idempotency_key)
        existing = workflows.get(wf.name)
        if existing is not None and existing.func.__qualname__ != f.__qualname__:
            raise ImproperlyConfigured(f"two workflows are named {wf.name!r}")
        workflows[wf.name] = wf
        return wf

    return wrap(func) if func is not None else wrap
