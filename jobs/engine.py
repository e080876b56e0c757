"""Jobs as entity messages: each attempt is a persisted, deduplicated call to ``jobs.Job``.

Enqueueing writes a :class:`~jobs.models.Job` row and the first attempt message in the
caller's transaction; the runner owning the job's shard gets it pushed (no row polling,
no ``SKIP LOCKED`` on a jobs table). A failed attempt that may be retried stores the next
attempt (primary key ``<job id>:<n>``, ``deliver_at`` after the backoff) before it
replies, so a crash anywhere neither loses nor doubles an attempt. A job's status is
read back from its attempt messages and their replies.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime as dt
import functools
import hashlib
import inspect
import json
import random
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models.functions import Now
from django.utils.module_loading import import_string

from clusterkit import Entity, RetryPolicy, metrics, rpc, snowflake, tracing
from clusterkit.models import Message, Reply, ReplyStatus
from clusterkit.sharding import stable_hash
from clusterkit.storage import Storage, message_key

from . import signals
from .conf import job_settings
from .models import Job

ENTITY_TYPE = "jobs.Job"
READY, RUNNING, SUCCESSFUL, FAILED = "READY", "RUNNING", "SUCCESSFUL", "FAILED"
RETRYING, CANCELLED = "RETRYING", "CANCELLED"

# Handlers registered by name through JobService.register; tasks are found by import path.
handlers: dict[str, Callable[..., Any]] = {}
_cancel_event: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "clusterkit_job_cancel", default=None
)


class JobCancelled(Exception):
    """Raised by a job that noticed it was cancelled (see :func:`cancelled`)."""


def cancelled() -> bool:
    """True when the running job was asked to stop (cooperative cancellation)."""
    event = _cancel_event.get()
    return bool(event and event.is_set())


class Attempt(msgspec.Struct, kw_only=True):
    """The payload of one attempt message."""

    job_id: str
    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    attempt: int
    max_attempts: int
    backoff_base: float
    backoff_max: float
    retry_on: list[str] = []
    takes_context: bool = False
    priority: int = 0
    queue: str = "default"
    backend: str = "default"
    enqueued_at: float = 0.0


class Outcome(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The reply of one attempt."""

    status: str
    attempt: int
    worker_id: str
    started_at: float
    finished_at: float
    return_value: Any = None
    error_class: str = ""
    error_traceback: str = ""


@dataclasses.dataclass
class JobState:
    """What is known of a job: its row, and the attempts made so far."""

    job: Job
    status: str
    attempts: list[tuple[Message, Outcome | None]]

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for _, o in self.attempts if o is not None]

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error_class]

    @property
    def return_value(self) -> Any:
        final = self.outcomes[-1] if self.outcomes else None
        return final.return_value if final and final.status == SUCCESSFUL else None


async def in_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run sync ``func`` on a handler thread with the caller's context and a usable
    database connection."""
    from clusterkit.runner import in_handler_thread

    return await in_handler_thread(functools.partial(func, *args, **kwargs))


def _queue_group(entity_id: str) -> str:
    """Jobs of a queue live in the shard group the queue is mapped to."""
    queue = entity_id.split(":", 1)[0]
    return str(job_settings.QUEUE_GROUPS.get(queue, "default"))


def resolve(name: str) -> tuple[Callable[..., Any], bool]:
    """The callable behind a job name and whether it takes a context argument."""
    func = handlers.get(name)
    if func is not None:
        return func, False
    from .compat import Task

    target = import_string(name)
    if isinstance(target, Task):
        return target.func, bool(target.takes_context)
    raise LookupError(f"{name!r} is neither a registered job nor a task")


class JobEntity(Entity):
    """Runs the attempts of the jobs routed to it, one at a time."""

    entity_type = ENTITY_TYPE
    max_idle_time = 30.0
    defect_retry_policy = RetryPolicy(max_attempts=1)  # retries are durable attempts

    @classmethod
    def group_for(cls, entity_id: str) -> str:
        return _queue_group(entity_id)

    def __init__(self) -> None:
        self.cancel: asyncio.Event | None = None
        self.running: str | None = None

    @rpc(persisted=True)
    async def attempt(self, job: Attempt) -> Outcome:
        worker = f"runner-{snowflake.generator.machine_id}"
        started = time.time()
        self.cancel, self.running = asyncio.Event(), job.job_id
        token = _cancel_event.set(self.cancel)
        try:
            with tracing.span(f"job {job.name}", {
                "clusterkit.job.id": job.job_id, "clusterkit.job.queue": job.queue,
                "clusterkit.job.attempt": job.attempt,
            }):  # fmt: skip
                func, takes_context = resolve(job.name)
                takes_context = takes_context or job.takes_context
                if inspect.iscoroutinefunction(func):
                    outcome = await _run_async(job, func, takes_context, worker, started)
                else:  # the signals, the task and its context in one trip to a thread
                    outcome = await in_thread(_run_sync, job, func, takes_context, worker, started)
        except Exception as exc:
            outcome = await self._failed(job, exc, worker, started)
            if outcome.status != RETRYING:
                await in_thread(signals.send_finished, job, outcome)
        finally:
            _cancel_event.reset(token)
            self.cancel = self.running = None
        metrics.job_finished(job.queue, outcome.status, outcome.finished_at - started)
        return outcome

    async def _failed(self, job: Attempt, exc: Exception, worker: str, started: float) -> Outcome:
        retryable = not isinstance(exc, JobCancelled) and (
            not job.retry_on or any(_is_instance(exc, path) for path in job.retry_on)
        )
        status = FAILED
        if isinstance(exc, JobCancelled):
            status = CANCELLED
        elif retryable and job.attempt < job.max_attempts:
            status = RETRYING
            await in_thread(schedule_attempt, job, job.attempt + 1, backoff(job))
        return Outcome(
            status=status, attempt=job.attempt, worker_id=worker, started_at=started,
            finished_at=time.time(), error_class=f"{type(exc).__module__}.{type(exc).__qualname__}",
            error_traceback="".join(traceback.format_exception(exc))[-8000:],
        )

    @rpc(exclusive=False)
    async def request_cancel(self, job_id: str) -> bool:
        """Ask the running attempt of ``job_id`` to stop; False if it is not running here."""
        if self.cancel is None or self.running != job_id:
            return False
        self.cancel.set()
        return True


def _args(job: Attempt, takes_context: bool) -> list[Any]:
    """The task's positional arguments, led by its ``TaskContext`` if it takes one."""
    if not takes_context:
        return list(job.args)
    from .results import context_for

    return [context_for(job.job_id), *job.args]


def _succeeded(job: Attempt, value: Any, worker: str, started: float) -> Outcome:
    """The outcome of an attempt that returned ``value``, its ``task_finished`` sent."""
    outcome = Outcome(status=SUCCESSFUL, attempt=job.attempt, worker_id=worker,
                      started_at=started, finished_at=time.time(),
                      return_value=msgspec.to_builtins(value))
    signals.send_finished(job, outcome)
    return outcome


def _run_sync(
    job: Attempt, func: Callable[..., Any], takes_context: bool, worker: str, started: float
) -> Outcome:
    """A sync task's attempt, on a database thread: signals, arguments, the call."""
    signals.send_started(job, worker, started)
    return _succeeded(job, func(*_args(job, takes_context), **job.kwargs), worker, started)


async def _run_async(
    job: Attempt, func: Callable[..., Any], takes_context: bool, worker: str, started: float
) -> Outcome:
    """An async task's attempt: the signals and the context on a thread, the call here."""
    threaded = signals.need_thread(job)
    if takes_context or threaded:
        args = await in_thread(_started, job, takes_context, worker, started)
    else:
        args = _started(job, False, worker, started)
    value = await func(*args, **job.kwargs)
    if threaded:
        return await in_thread(_succeeded, job, value, worker, started)
    return _succeeded(job, value, worker, started)


def _started(job: Attempt, takes_context: bool, worker: str, started: float) -> list[Any]:
    signals.send_started(job, worker, started)
    return _args(job, takes_context)


def _is_instance(exc: BaseException, path: str) -> bool:
    try:
        cls = import_string(path)
    except ImportError:
        return False
    return isinstance(cls, type) and isinstance(exc, cls)


def backoff(job: Attempt) -> float:
    """Seconds before the next attempt: exponential with full jitter."""
    ceiling = min(job.backoff_max, job.backoff_base * 2 ** (job.attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _attempt_key(job: Job | Attempt, entity_id: str, attempt: int) -> str:
    job_id = job.id if isinstance(job, Job) else job.job_id
    return message_key(ENTITY_TYPE, entity_id, "attempt", f"{job_id}:{attempt}")


def schedule_attempt(job: Attempt, attempt: int, delay: float) -> None:
    """Store attempt number ``attempt`` of ``job`` (deduplicated), due after ``delay``."""
    entity_id = Job.objects.values_list("entity_id", flat=True).get(pk=job.job_id)
    payload = msgspec.structs.replace(job, attempt=attempt)
    JobEntity.client(entity_id).attempt.options(
        primary_key=f"{job.job_id}:{attempt}",
        deliver_at=dt.timedelta(seconds=delay),
        priority=job.priority,
    ).send(job=payload)


@dataclasses.dataclass
class NewJob:
    """The arguments of one enqueue."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str = "default"
    priority: int = 0
    run_after: dt.datetime | None = None
    idempotency_key: str | None = None
    concurrency_key: str | None = None
    concurrency_limit: int = 1
    max_attempts: int | None = None
    retry_on: list[str] = dataclasses.field(default_factory=list)
    takes_context: bool = False
    backend: str = "default"

    def job_id(self) -> str:
        if self.idempotency_key is None:
            return uuid.uuid4().hex
        digest = hashlib.sha256(f"{self.name}\0{self.idempotency_key}".encode()).hexdigest()
        return f"k{digest[:31]}"

    def entity_id(self, job_id: str) -> str:
        if self.concurrency_key:
            slot = stable_hash(job_id) % max(1, self.concurrency_limit)
            return f"{self.queue}:~{self.concurrency_key}#{slot}"
        return f"{self.queue}:{job_id}"


def enqueue_many(jobs: list[NewJob]) -> list[Job]:
    """Store jobs and their first attempts in one transaction (the caller's, if any)."""
    rows: list[Job] = []
    calls: list[tuple[str, Attempt, int | None, int]] = []
    for new in jobs:
        job_id = new.job_id()
        attempts = new.max_attempts or int(job_settings.MAX_ATTEMPTS)
        row = Job(
            id=job_id, name=new.name, queue=new.queue, priority=new.priority, args=new.args,
            kwargs=new.kwargs, backend=new.backend, concurrency_key=new.concurrency_key or "",
            entity_id=new.entity_id(job_id), max_attempts=attempts, enqueued_at=Now(),
            run_after=new.run_after,
        )
        rows.append(row)
        payload = Attempt(
            job_id=job_id, name=new.name, args=new.args, kwargs=new.kwargs, attempt=1,
            max_attempts=attempts, backoff_base=float(job_settings.BACKOFF_BASE),
            backoff_max=float(job_settings.BACKOFF_MAX), retry_on=new.retry_on,
            takes_context=new.takes_context, priority=new.priority, queue=new.queue,
            backend=new.backend, enqueued_at=time.time(),
        )
        due = int(new.run_after.timestamp() * 1000) if new.run_after else None
        calls.append((row.entity_id, payload, due, new.priority))
    storage = Storage()
    if storage.is_postgres and not storage.connection.in_atomic_block:
        _send_attempts(calls, before=_insert_jobs(rows))  # one statement, one round trip
    else:
        with transaction.atomic():
            Job.objects.bulk_create(rows, ignore_conflicts=True)
            _send_attempts(calls)
    return rows


def _insert_jobs(rows: list[Job]) -> tuple[str, list[Any]]:
    """An ``INSERT … ON CONFLICT DO NOTHING`` of ``rows`` (PostgreSQL), as SQL and params,
    to run in the statement that stores their first attempts."""
    fields, columns, casts = _job_columns()
    names = ", ".join(f"c{i}" for i in range(len(fields)))
    head = f"INSERT INTO {Job._meta.db_table} ({columns}, enqueued_at) "
    values = [
        [json.dumps(getattr(r, f.attname)) if f.get_internal_type() == "JSONField"
         else getattr(r, f.attname) for f in fields]
        for r in rows
    ]
    if len(rows) == 1:  # plain values: no arrays to build
        marks = ", ".join("%s" for _ in fields)
        return f"{head}VALUES ({marks}, now()) ON CONFLICT DO NOTHING", values[0]
    sql = (f"{head}SELECT {names}, now() FROM unnest({casts}) AS t({names}) "
           "ON CONFLICT DO NOTHING")
    return sql, [list(column) for column in zip(*values, strict=True)]


@functools.cache
def _job_columns() -> tuple[list[Any], str, str]:
    """The job fields stored by :func:`_insert_jobs`, their column list and array casts."""
    connection = Storage().connection
    fields = [f for f in Job._meta.concrete_fields if f.name != "enqueued_at"]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    casts = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    return fields, columns, casts


def _send_attempts(
    calls: list[tuple[str, Attempt, int | None, int]], before: tuple[str, list[Any]] | None = None
) -> None:
    from clusterkit import context
    from clusterkit.sharding import shard_for
    from clusterkit.storage import OutgoingMessage

    spec = JobEntity.spec("attempt")
    headers = msgspec.json.encode(context.to_headers()).decode()
    messages = [
        OutgoingMessage(
            id=snowflake.next_id(),
            message_key=message_key(ENTITY_TYPE, entity_id, "attempt", f"{a.job_id}:1"),
            shard_group=_queue_group(entity_id),
            shard_id=shard_for(entity_id),
            entity_type=ENTITY_TYPE,
            entity_id=entity_id,
            rpc="attempt",
            payload=spec.encode_args((), {"job": a}).decode(),
            headers=headers,
            priority=priority,
            deliver_at=due,
        )
        for entity_id, a, due, priority in calls
    ]
    Storage().save(messages, before=before, resolve_ids=False)
    from clusterkit.client import _embedded

    transaction.on_commit(_embedded)


_outcome_decoder = msgspec.json.Decoder(Outcome)


def state(job_id: str) -> JobState:
    """The job and its attempts so far (raises ``Job.DoesNotExist``)."""
    job = Job.objects.get(pk=job_id)
    return states([job])[job.pk]


def states(jobs: list[Job]) -> dict[str, JobState]:
    """The state of each of ``jobs``, read with two queries."""
    keys = {
        _attempt_key(job, job.entity_id, n): job.pk
        for job in jobs
        for n in range(1, job.max_attempts + 1)
    }
    messages = sorted(Message.objects.filter(message_key__in=list(keys)), key=lambda m: m.id)
    replies = {
        r.request_id: r
        for r in Reply.objects.filter(request_id__in=[m.id for m in messages], kind=0)
    }
    attempts: dict[str, list[tuple[Message, Outcome | None]]] = {job.pk: [] for job in jobs}
    for message in messages:
        made = attempts[keys[str(message.message_key)]]
        made.append((message, _outcome(message, replies.get(message.id), len(made) + 1)))
    return {job.pk: JobState(job, _status(attempts[job.pk]), attempts[job.pk]) for job in jobs}


def _outcome(message: Message, reply: Reply | None, number: int) -> Outcome | None:
    """What an attempt's reply says, or ``None`` while it has none."""
    if reply is None:
        return None
    if reply.status == ReplyStatus.SUCCESS:
        return _outcome_decoder.decode(reply.payload)
    # The handler itself failed (a defect): count it as a failed attempt.
    error = msgspec.json.decode(reply.payload)
    return Outcome(
        status=FAILED, attempt=number, worker_id="", started_at=0.0,
        finished_at=message.created_at.timestamp(),
        error_class=str(error.get("type", "Error")),
        error_traceback=str(error.get("traceback") or error.get("message", "")),
    )


def _status(attempts: list[tuple[Message, Outcome | None]]) -> str:
    if not attempts:
        return READY
    message, outcome = attempts[-1]
    if outcome is None:
        return RUNNING if message.last_read is not None else READY
    return outcome.status if outcome.status != RETRYING else READY


def cancel(job_id: str) -> bool:
    """Cancel a queued or scheduled job at once, or ask a running one to stop."""
    current = state(job_id)
    if current.status not in (READY, RUNNING):
        return False
    message = current.attempts[-1][0] if current.attempts else None
    if message is None:
        return False
    with transaction.atomic():
        taken = Message.objects.filter(
            pk=message.pk, processed=False, last_read__isnull=True
        ).update(processed=True)
        if taken:
            now = time.time()
            outcome = Outcome(status=CANCELLED, attempt=len(current.attempts), worker_id="",
                              started_at=now, finished_at=now,
                              error_class="jobs.engine.JobCancelled")
            Reply.objects.create(
                id=snowflake.next_id(), request_id=message.pk, status=ReplyStatus.SUCCESS,
                payload=msgspec.json.encode(outcome).decode(),
            )
            return True
    client = JobEntity.client(current.job.entity_id)
    try:
        return bool(client.request_cancel.options(timeout=5).call(job_id=job_id))
    except Exception:
        return False


def retry(job_id: str) -> bool:
    """Run a failed or cancelled job again, as one more attempt."""
    current = state(job_id)
    if current.status not in (FAILED, CANCELLED):
        return False
    last = current.attempts[-1][0]
    attempt = msgspec.json.decode(last.payload, type=dict[str, Attempt])["job"]
    number = len(current.attempts) + 1
    Job.objects.filter(pk=job_id).update(max_attempts=max(current.job.max_attempts, number))
    payload = msgspec.structs.replace(attempt, attempt=number, max_attempts=number)
    JobEntity.client(current.job.entity_id).attempt.options(
        primary_key=f"{job_id}:{number}", priority=attempt.priority
    ).send(job=payload)
    return True


async def acancel(job_id: str) -> bool:
    """Async :func:`cancel`."""
    return await sync_to_async(cancel)(job_id)


async def aretry(job_id: str) -> bool:
    """Async :func:`retry`."""
    return await sync_to_async(retry)(job_id)
