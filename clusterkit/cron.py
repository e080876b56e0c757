"""Cron jobs: ``@cron("*/5 * * * *", name=...)`` runs each scheduled instant once.

Every instant is a persisted, deduplicated (the instant is the primary key) and
scheduled (``deliver_at`` = the instant) message to the ``clusterkit.Cron`` entity, so it
survives restarts and failovers and cannot run twice. Each run schedules the next one; a
singleton seeds the first. An instant found more than ``max_age`` late (the cluster was
down) is skipped, not replayed: the schedule resumes from now, with no burst.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import logging
import zoneinfo
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from croniter import croniter
from django.core.exceptions import ImproperlyConfigured

from .entity import Entity
from .rpc import rpc
from .singleton import singleton

logger = logging.getLogger("clusterkit.cron")


@dataclasses.dataclass(frozen=True)
class CronSpec:
    """A registered cron job."""

    name: str
    expression: str
    func: Callable[..., Any]
    tz: str
    max_age: dt.timedelta

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first scheduled instant strictly after ``moment`` (aware, in UTC)."""
        local = moment.astimezone(zoneinfo.ZoneInfo(self.tz))
        nxt: dt.datetime = croniter(self.expression, local).get_next(dt.datetime)
        return nxt.astimezone(dt.UTC)


crons: dict[str, CronSpec] = {}


def cron(
    expression: str,
    *,
    name: str,
    tz: str = "UTC",
    max_age: dt.timedelta = dt.timedelta(hours=1),
    shard_group: str = "default",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated sync or async callable at each instant of ``expression``.

    The callable may take one argument, the scheduled instant (an aware datetime).
    """
    if not croniter.is_valid(expression):
        raise ImproperlyConfigured(f"cron {name!r}: {expression!r} is not a cron expression")
    try:
        zoneinfo.ZoneInfo(tz)
    except zoneinfo.ZoneInfoNotFoundError:
        raise ImproperlyConfigured(f"cron {name!r}: unknown time zone {tz!r}") from None

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        crons[name] = CronSpec(name, expression, func, tz, max_age)

        @singleton(f"cron:{name}", shard_group=shard_group)
        async def seed() -> None:
            await sync_to_async(schedule)(crons[name], dt.datetime.now(dt.UTC))
            await asyncio.Event().wait()  # keep the singleton alive; it only seeds

        seed.__qualname__ = f"cron_seed.{name}"
        return func

    return register


def schedule(spec: CronSpec, after: dt.datetime) -> None:
    """Store the run of ``spec``'s next instant after ``after`` (deduplicated)."""
    instant = spec.next_after(after)
    Cron.client(spec.name).run.options(
        primary_key=instant.isoformat(), deliver_at=instant
    ).send(instant=instant.isoformat())


class Cron(Entity):
    """The entity whose persisted ``run`` messages are cron instants (one id per job)."""

    entity_type = "clusterkit.Cron"

    @rpc(persisted=True)
    async def run(self, instant: str) -> str:
        spec = crons.get(self.entity_id)
        if spec is None:
            return "unknown cron job"
        when = dt.datetime.fromisoformat(instant)
        now = dt.datetime.now(dt.UTC)
        if now - when > spec.max_age:
            logger.warning("cron %s: skipped %s, %s late", spec.name, instant, now - when)
            await sync_to_async(schedule)(spec, now)
            return "skipped"
        args = (when,) if inspect.signature(spec.func).parameters else ()
        if inspect.iscoroutinefunction(spec.func):
            await spec.func(*args)
        else:
            await sync_to_async(spec.func, thread_sensitive=False)(*args)
        await sync_to_async(schedule)(spec, when)
        return "ran"
