"""What an operator sees of the cluster, read from the database in a few aggregate queries.

Shared by the metrics collector (:func:`cluster_counts`, at every scrape) and the admin
shard view (:func:`snapshot`, at every refresh), and the operations behind the view's
buttons (:func:`drain`, :func:`retry_message`, :func:`retry_job`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from django.apps import apps
from django.db.models import Count, Q, Value
from django.db.models.functions import Now, StrIndex, Substr

from . import leases, snowflake
from .conf import cluster_settings
from .models import Message, Reply, ReplyKind, ReplyStatus, Runner, ShardLease

JOB_ENTITY = "jobs.Job"
# The shard view lists the failures of the last day: the replies table is scanned by its
# (time-ordered) primary key from there, not from the beginning of the retention.
FAILURE_WINDOW = 24 * 3600.0


@dataclasses.dataclass
class RunnerRow:
    """One registered runner as the operator sees it."""

    machine_id: int
    address: str
    host: str
    pid: int
    version: str
    groups: list[str]
    draining: bool
    healthy: bool
    heartbeat_age: float
    started_at: str
    entities: int


@dataclasses.dataclass
class ClusterCounts:
    """The cluster-wide figures of one scrape."""

    runners: list[RunnerRow]
    runner_states: dict[str, int]
    shards: dict[tuple[str, str], int]  # (group, runner id or "") -> shards
    backlog: dict[tuple[str, str], int]  # (group, "due" | "scheduled") -> messages
    jobs: dict[tuple[str, str], int]  # (queue, status) -> unfinished jobs
    workflows: dict[str, int] = dataclasses.field(default_factory=dict)  # status -> executions


def runner_rows(alias: str = "default") -> list[RunnerRow]:
    """Every registered runner with its heartbeat age by the database clock."""
    ttl = float(cluster_settings.SHARD_LEASE_TTL)
    rows = []
    for r in Runner.objects.using(alias).annotate(db_now=Now()).order_by("machine_id"):
        age = max(0.0, (r.db_now - r.last_heartbeat).total_seconds())  # type: ignore[attr-defined]
        rows.append(
            RunnerRow(
                machine_id=r.machine_id, address=r.address, host=r.host, pid=r.pid,
                version=r.version, groups=list(r.groups or []), draining=r.draining,
                healthy=r.healthy and not r.draining and age < ttl, heartbeat_age=round(age, 3),
                started_at=r.started_at.isoformat(timespec="seconds"),
                entities=r.entities_active,
            )
        )
    return rows


def cluster_counts(alias: str = "default") -> ClusterCounts:
    """Runners, shards per owner, backlog per group and unfinished jobs per queue."""
    runners = runner_rows(alias)
    states = {"healthy": 0, "draining": 0, "stale": 0}
    for r in runners:
        states["healthy" if r.healthy else "draining" if r.draining else "stale"] += 1
    shards: dict[tuple[str, str], int] = {}
    owned = (
        ShardLease.objects.using(alias)
        .filter(runner__isnull=False, expires_at__gt=Now())
        .values_list("shard_group", "runner_id")
        .annotate(n=Count("id"))
    )
    for group, runner_id, n in owned:
        shards[(group, str(runner_id))] = n
    totals = ShardLease.objects.using(alias).values_list("shard_group").annotate(n=Count("id"))
    for group, n in totals:
        held = sum(v for (g, _), v in shards.items() if g == group)
        shards[(group, "")] = n - held
    now_ms = int(time.time() * 1000)
    due = Q(deliver_at__isnull=True) | Q(deliver_at__lte=now_ms)
    backlog: dict[tuple[str, str], int] = {}
    rows = (
        Message.objects.using(alias).filter(processed=False)
        .values_list("shard_group")
        .annotate(due=Count("id", filter=due), total=Count("id"))
    )  # fmt: skip
    for group, n_due, total in rows:
        backlog[(group, "due")] = n_due
        backlog[(group, "scheduled")] = total - n_due
    return ClusterCounts(
        runners, states, shards, backlog, job_counts(alias, now_ms), workflow_counts(alias)
    )


def job_counts(alias: str, now_ms: int) -> dict[tuple[str, str], int]:
    """Unfinished jobs per queue: READY, SCHEDULED (deferred or backing off), RUNNING."""
    if not apps.is_installed("jobs"):
        return {}
    queue = Substr("entity_id", 1, StrIndex("entity_id", Value(":")) - Value(1))
    rows = (
        Message.objects.using(alias)
        .filter(processed=False, entity_type=JOB_ENTITY)
        .annotate(queue=queue)
        .values_list("queue")
        .annotate(
            running=Count("id", filter=Q(last_read__isnull=False)),
            scheduled=Count("id", filter=Q(last_read__isnull=True, deliver_at__gt=now_ms)),
            total=Count("id"),
        )
    )
    counts: dict[tuple[str, str], int] = {}
    for name, running, scheduled, total in rows:
        name = str(name)
        counts[(name, "RUNNING")] = running
        counts[(name, "SCHEDULED")] = scheduled
        counts[(name, "READY")] = total - running - scheduled
    return counts


def workflow_counts(alias: str) -> dict[str, int]:
    """Workflow executions per status (one count over the status index), if installed."""
    try:
        model = apps.get_model("jobs", "WorkflowExecution")
    except LookupError:
        return {}
    return dict(model.objects.using(alias).values_list("status").annotate(n=Count("pk")))


# -- the admin shard view ---------------------------------------------------------------


def snapshot(alias: str = "default", failures: int = 20) -> dict[str, Any]:
    """Everything the shard view shows, as JSON-ready data."""
    from .cron import crons
    from .singleton import singletons

    counts = cluster_counts(alias)
    held: dict[int, int] = {}
    for (_group, runner), n in counts.shards.items():
        if runner:
            held[int(runner)] = held.get(int(runner), 0) + n
    per_shard = dict(
        ((g, s), n)
        for g, s, n in Message.objects.using(alias).filter(processed=False)
        .values_list("shard_group", "shard_id").annotate(n=Count("id"))
    )  # fmt: skip
    owners: dict[tuple[str, int], int | None] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    lease_rows = ShardLease.objects.using(alias).annotate(db_now=Now()).order_by(
        "shard_group", "shard_id"
    )
    for lease in lease_rows:
        live = lease.expires_at is not None and lease.expires_at > lease.db_now  # type: ignore[attr-defined]
        owner = lease.runner_id if live else None
        owners[(lease.shard_group, lease.shard_id)] = owner
        expires = (
            round((lease.expires_at - lease.db_now).total_seconds(), 1)  # type: ignore[attr-defined]
            if lease.expires_at is not None else None
        )  # fmt: skip
        groups.setdefault(lease.shard_group, []).append({
            "shard": lease.shard_id, "runner": owner, "epoch": lease.epoch,
            "expires_in": expires, "backlog": per_shard.get((lease.shard_group, lease.shard_id), 0),
        })  # fmt: skip
    shards = int(cluster_settings.SHARDS_PER_GROUP)
    singleton_rows = []
    for name, spec in sorted(singletons.items()):
        where = spec.shard(shards)
        singleton_rows.append({"name": name, "shard_group": where[0], "shard": where[1],
                               "runner": owners.get(where)})  # fmt: skip
    return {
        "runners": [
            {**dataclasses.asdict(r), "shards": held.get(r.machine_id, 0)} for r in counts.runners
        ],
        "groups": [{"name": g, "shards": rows} for g, rows in groups.items()],
        "backlog": {f"{g}:{state}": n for (g, state), n in counts.backlog.items()},
        "singletons": singleton_rows,
        "crons": cron_rows(crons, alias),
        "failed_messages": failed_messages(alias, failures),
        "failed_jobs": failed_jobs(alias, failures),
        "jobs": {f"{q}:{s}": n for (q, s), n in counts.jobs.items()},
    }


def _ms_iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def cron_rows(crons: dict[str, Any], alias: str) -> list[dict[str, Any]]:
    """Each cron job with its last run (newest processed instant) and next instant."""
    rows = []
    for name, spec in sorted(crons.items()):
        runs = Message.objects.using(alias).filter(entity_type="clusterkit.Cron", entity_id=name)
        last = runs.filter(processed=True).order_by("-deliver_at").values_list(
            "deliver_at", flat=True
        ).first()
        pending = runs.filter(processed=False).order_by("deliver_at").values_list(
            "deliver_at", flat=True
        ).first()
        nxt = _ms_iso(pending) or spec.next_after(dt.datetime.now(dt.UTC)).isoformat(
            timespec="seconds"
        )
        rows.append({"name": name, "expression": spec.expression, "tz": spec.tz,
                     "last_run": _ms_iso(last), "next_run": nxt})  # fmt: skip
    return rows


def _recent_replies(alias: str) -> Any:
    """Exit replies of the last ``FAILURE_WINDOW`` seconds (a range of the primary key)."""
    since = snowflake.lowest_id_at(int((time.time() - FAILURE_WINDOW) * 1000))
    return Reply.objects.using(alias).filter(id__gte=since, kind=ReplyKind.EXIT)


def failed_messages(alias: str, limit: int) -> list[dict[str, Any]]:
    """The newest requests whose recorded outcome is a failure (jobs aside)."""
    replies = list(
        _recent_replies(alias)
        .filter(status=ReplyStatus.FAILURE)
        .order_by("-id").values_list("request_id", "payload")[: limit * 2]
    )  # fmt: skip
    messages = Message.objects.using(alias).in_bulk([r for r, _ in replies])
    rows = []
    for request_id, payload in replies:
        m = messages.get(request_id)
        if m is None or m.entity_type == JOB_ENTITY:
            continue
        rows.append({
            "id": str(m.id), "entity_type": m.entity_type, "entity_id": m.entity_id,
            "rpc": m.rpc, "attempts": m.attempts, "error": payload[:300],
            "created_at": m.created_at.isoformat(timespec="seconds"),
        })  # fmt: skip
        if len(rows) >= limit:
            break
    return rows


def failed_jobs(alias: str, limit: int) -> list[dict[str, Any]]:
    """The newest jobs whose last attempt failed (or was cancelled)."""
    if not apps.is_installed("jobs"):
        return []
    from jobs import engine

    recent = (
        _recent_replies(alias)
        .filter(
            Q(payload__startswith='{"status":"FAILED"')
            | Q(payload__startswith='{"status":"CANCELLED"')
            | Q(status=ReplyStatus.FAILURE)
        )
        .order_by("-id").values_list("request_id", flat=True)[: limit * 3]
    )  # fmt: skip
    job_messages = Message.objects.using(alias).filter(
        id__in=list(recent), entity_type=JOB_ENTITY
    ).order_by("-id")  # fmt: skip
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for m in job_messages:
        try:
            job_id = str(_job_id(m.payload))
            if job_id in seen:
                continue
            seen.add(job_id)
            state = engine.state(job_id)
        except Exception:
            continue
        if state.status not in (engine.FAILED, engine.CANCELLED):
            continue
        error = state.errors[-1] if state.errors else None
        rows.append({
            "id": job_id, "name": state.job.name, "queue": state.job.queue,
            "status": state.status, "attempts": len(state.attempts),
            "error": error.error_class if error else "",
        })  # fmt: skip
        if len(rows) >= limit:
            break
    return rows


def _job_id(payload: str) -> str:
    import msgspec

    return str(msgspec.json.decode(payload)["job"]["job_id"])


# -- operations -------------------------------------------------------------------------


def drain(runner_id: int) -> bool:
    """Flag a runner as draining (what ``clusterkit drain`` does); False if it is unknown."""
    if not Runner.objects.filter(pk=runner_id).exists():
        return False
    leases.mark_draining(runner_id)
    return True


def retry_message(message_id: int) -> int | None:
    """Store a failed message again as a new one (same entity, rpc, payload and headers).

    Returns the new message id, or ``None`` when there is no failed message of that id.
    """
    from .client import _embedded
    from .storage import OutgoingMessage, Storage

    failed = Reply.objects.filter(
        request_id=message_id, kind=ReplyKind.EXIT, status=ReplyStatus.FAILURE
    ).exists()
    m = Message.objects.filter(pk=message_id).first()
    if not failed or m is None or m.entity_type == JOB_ENTITY:
        return None
    new_id = Storage().save([
        OutgoingMessage(
            id=snowflake.next_id(), message_key=None, shard_group=m.shard_group,
            shard_id=m.shard_id, entity_type=m.entity_type, entity_id=m.entity_id, rpc=m.rpc,
            payload=m.payload, headers=m.headers, priority=m.priority,
        )
    ])[0]  # fmt: skip
    _embedded()
    return new_id


def retry_job(job_id: str) -> bool:
    """Run a failed or cancelled job again (``jobs.engine.retry``)."""
    if not apps.is_installed("jobs"):
        return False
    from jobs import engine

    try:
        return engine.retry(job_id)
    except Exception:
        return False
