"""Tasks and job handlers used by the jobs tests."""

from __future__ import annotations

import asyncio
import os
import time

from jobs import engine
from jobs.compat import TaskContext, task
from jobs.service import service

from .models import HandlerRun

calls: dict[str, int] = {}


@task()
def add(a: int, b: int) -> int:
    return a + b


@task(priority=10, queue_name="emails")
async def async_echo(text: str) -> str:
    await asyncio.sleep(0)
    return text


@task()
def always_fails(tag: str) -> None:
    raise ValueError(f"poison {tag}")


@task()
def fails_then_works(tag: str, times: int) -> str:
    calls[tag] = calls.get(tag, 0) + 1
    if calls[tag] <= times:
        raise ConnectionError(f"try {calls[tag]}")
    return f"ok after {calls[tag]}"


@task(takes_context=True)
def with_context(context: TaskContext, tag: str) -> int:
    return int(context.attempt)


@task()
def record(tag: str) -> str:
    HandlerRun.objects.create(entity_id="job", seq=0, pid=os.getpid(), key=tag)
    return tag


@task()
def slow_record(tag: str, seconds: float) -> str:
    time.sleep(seconds)
    HandlerRun.objects.create(entity_id="job", seq=0, pid=os.getpid(), key=tag)
    return tag


@task()
def wait_for_cancel(seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if engine.cancelled():
            raise engine.JobCancelled("stopped on request")
        time.sleep(0.02)
    return "not cancelled"


@service.register("welcome", max_attempts=2)
async def welcome(user: str) -> str:
    return f"welcome {user}"


@task()
def tick() -> str:
    return "tick"
