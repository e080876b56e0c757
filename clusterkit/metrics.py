"""Prometheus metrics of the cluster: what this process did, and the cluster seen from the database.

Three kinds of series:

- *counters and histograms* updated on the message path of this process (sends, handler
  runs, redeliveries, fenced results, mailbox rejections, lease moves, jobs, streams).
  Label children are cached per label set (:func:`child`, :func:`for_entity`), so the hot
  path costs a dict lookup and an increment;
- *runner gauges* read from the runners living in this process at scrape time
  (:class:`RunnerCollector`: shards held, active entities per type, singletons);
- *cluster gauges* read from the database at scrape time with a few aggregate queries
  (:class:`ClusterCollector`: runners and their health, shards per owner, backlog per
  shard group, jobs per queue and status, workflow executions per status). Every process
  exposing ``/metrics`` reports the same cluster gauges: aggregate them with ``max`` (or
  scrape one process).

Web processes expose them through django-prometheus (``django_prometheus`` in
``INSTALLED_APPS``, its middleware and ``include("django_prometheus.urls")``); a runner with
``runworker --metrics-port N`` serves them on ``http://host:N/metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger("clusterkit.metrics")

# Seconds: from well under a millisecond (an in-process handler) to a minute (a backlog).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
)  # fmt: skip

# -- messages ----------------------------------------------------------------------------

MESSAGES_SENT = Counter(
    "clusterkit_messages_sent",
    "Calls sent by this process, by entity type and kind (persisted or volatile).",
    ["entity_type", "kind"],
)
MESSAGES_PROCESSED = Counter(
    "clusterkit_messages_processed",
    "Requests whose handler succeeded on this runner, by entity type.",
    ["entity_type"],
)
MESSAGES_FAILED = Counter(
    "clusterkit_messages_failed",
    "Requests that failed on this runner after their last attempt, by entity type.",
    ["entity_type"],
)
MESSAGES_RETRIED = Counter(
    "clusterkit_messages_retried",
    "Handler attempts that raised and were retried in place, by entity type.",
    ["entity_type"],
)
MESSAGES_REDELIVERED = Counter(
    "clusterkit_messages_redelivered",
    "Stored messages claimed again (after a crash, a shard move or an expired read lease).",
    ["entity_type"],
)
MESSAGES_FENCED = Counter(
    "clusterkit_messages_fenced",
    "Results not committed because the shard's lease was lost meanwhile, by entity type.",
    ["entity_type"],
)
MAILBOX_FULL = Counter(
    "clusterkit_mailbox_full_rejections",
    "Volatile calls refused because the entity's mailbox was full, by entity type.",
    ["entity_type"],
)
DELIVERY_LATENCY = Histogram(
    "clusterkit_message_delivery_latency_seconds",
    "Time from a persisted message being stored (or falling due) to its handler starting.",
    ["entity_type"],
    buckets=LATENCY_BUCKETS,
)
HANDLER_DURATION = Histogram(
    "clusterkit_handler_duration_seconds",
    "Time one handler attempt ran, by entity type.",
    ["entity_type"],
    buckets=LATENCY_BUCKETS,
)

# -- leases ------------------------------------------------------------------------------

LEASE_ACQUISITIONS = Counter(
    "clusterkit_lease_acquisitions",
    "Shard leases this process's runners took (a new epoch), by shard group.",
    ["shard_group"],
)
LEASE_LOSSES = Counter(
    "clusterkit_lease_losses",
    "Shard leases this process's runners lost (expired, taken over, or fenced), by shard group.",
    ["shard_group"],
)
LEASE_RELEASES = Counter(
    "clusterkit_lease_releases",
    "Shard leases this process's runners handed over (rebalancing, draining), by shard group.",
    ["shard_group"],
)

# -- jobs --------------------------------------------------------------------------------

JOBS_FINISHED = Counter(
    "clusterkit_job_attempts",
    "Job attempts finished on this runner, by queue and outcome "
    "(SUCCESSFUL, FAILED, RETRYING, CANCELLED).",
    ["queue", "status"],
)
JOB_DURATION = Histogram(
    "clusterkit_job_duration_seconds",
    "Time one job attempt ran, by queue.",
    ["queue"],
    buckets=LATENCY_BUCKETS,
)

# -- streaming ---------------------------------------------------------------------------

STREAM_SUBSCRIBERS = Gauge(
    "clusterkit_stream_subscribers",
    "Open stream subscriptions in this process, by transport (sse or websocket).",
    ["transport"],
)
STREAM_EVENTS_DROPPED = Counter(
    "clusterkit_stream_events_dropped",
    "Stream events not delivered live (a slow subscriber's buffer overflowed), by transport.",
    ["transport"],
)
STREAM_EVENTS_GAP_FILLED = Counter(
    "clusterkit_stream_events_gap_filled",
    "Stream events read back from the durable log to fill a gap, by transport.",
    ["transport"],
)

_children: dict[tuple[Any, ...], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """The (cached) child of ``metric`` for ``labels``: one dict lookup on the hot path."""
    key = (metric, *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


class EntityMetrics:
    """The label children of one entity type, looked up once per type."""

    __slots__ = (
        "delivery", "failed", "fenced", "handler", "mailbox_full", "processed", "redelivered",
        "retried", "sent_persisted", "sent_volatile",
    )  # fmt: skip

    def __init__(self, entity_type: str) -> None:
        self.processed = MESSAGES_PROCESSED.labels(entity_type)
        self.failed = MESSAGES_FAILED.labels(entity_type)
        self.retried = MESSAGES_RETRIED.labels(entity_type)
        self.redelivered = MESSAGES_REDELIVERED.labels(entity_type)
        self.fenced = MESSAGES_FENCED.labels(entity_type)
        self.mailbox_full = MAILBOX_FULL.labels(entity_type)
        self.delivery = DELIVERY_LATENCY.labels(entity_type)
        self.handler = HANDLER_DURATION.labels(entity_type)
        self.sent_persisted = MESSAGES_SENT.labels(entity_type, "persisted")
        self.sent_volatile = MESSAGES_SENT.labels(entity_type, "volatile")


_entities: dict[str, EntityMetrics] = {}


def for_entity(entity_type: str) -> EntityMetrics:
    """The cached :class:`EntityMetrics` of ``entity_type``."""
    found = _entities.get(entity_type)
    if found is None:
        found = _entities[entity_type] = EntityMetrics(entity_type)
    return found


def count_sent(entity_type: str, persisted: bool, n: int = 1) -> None:
    """``n`` more calls sent to ``entity_type``."""
    m = for_entity(entity_type)
    (m.sent_persisted if persisted else m.sent_volatile).inc(n)


def leases_moved(acquired: Iterable[Any], lost: Iterable[Any] = (),
                 released: Iterable[Any] = ()) -> None:
    """Count shard keys ``(group, shard)`` acquired, lost and handed over."""
    for metric, keys in ((LEASE_ACQUISITIONS, acquired), (LEASE_LOSSES, lost),
                         (LEASE_RELEASES, released)):
        for group, _ in keys:
            child(metric, group).inc()


def job_finished(queue: str, status: str, seconds: float) -> None:
    """One more job attempt of ``queue`` ended with ``status`` after ``seconds``."""
    child(JOBS_FINISHED, queue, status).inc()
    child(JOB_DURATION, queue).observe(seconds)


# The streaming app calls these (one transport label each: "sse" or "websocket").


def stream_subscribed(transport: str) -> None:
    """A subscriber connected."""
    child(STREAM_SUBSCRIBERS, transport).inc()


def stream_unsubscribed(transport: str) -> None:
    """A subscriber went away."""
    child(STREAM_SUBSCRIBERS, transport).dec()


def stream_dropped(transport: str, n: int = 1) -> None:
    """``n`` events could not be delivered live."""
    child(STREAM_EVENTS_DROPPED, transport).inc(n)


def stream_gap_filled(transport: str, n: int = 1) -> None:
    """``n`` events were read back from the log to fill a gap."""
    child(STREAM_EVENTS_GAP_FILLED, transport).inc(n)


# -- collectors read at scrape time --------------------------------------------------------


class RunnerCollector(Collector):
    """Gauges of the runners living in this process (no database access)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from .runner import local_runners

        shards = GaugeMetricFamily(
            "clusterkit_runner_shards_held", "Shards this runner holds, by shard group.",
            labels=["runner", "shard_group"],
        )
        entities = GaugeMetricFamily(
            "clusterkit_runner_entities_active", "Live entity instances, by entity type.",
            labels=["runner", "entity_type"],
        )
        singletons = GaugeMetricFamily(
            "clusterkit_runner_singletons_running", "Singletons running on this runner.",
            labels=["runner"],
        )
        in_flight = GaugeMetricFamily(
            "clusterkit_runner_in_flight_messages",
            "Messages claimed by this runner and not committed yet.", labels=["runner"],
        )
        for runner in list(local_runners.values()):
            rid = str(runner.runner_id)
            per_group: dict[str, int] = dict.fromkeys(runner.groups, 0)
            for group, _ in dict(runner.held):
                per_group[group] = per_group.get(group, 0) + 1
            for group, n in per_group.items():
                shards.add_metric([rid, group], n)
            per_type: dict[str, int] = {}
            for entity_type, _ in dict(runner.active):
                per_type[entity_type] = per_type.get(entity_type, 0) + 1
            for entity_type, n in per_type.items():
                entities.add_metric([rid, entity_type], n)
            singletons.add_metric([rid], len(runner.singleton_tasks))
            in_flight.add_metric([rid], len(runner.in_flight))
        yield from (shards, entities, singletons, in_flight)


class ClusterCollector(Collector):
    """Cluster-wide gauges from the database: a few aggregate queries per scrape.

    Results are kept for ``cache_seconds`` so several scrapers (or a fast one) do not
    multiply the queries. A database error yields ``clusterkit_cluster_up 0``, not a
    failed scrape.
    """

    def __init__(self, alias: str = "default", cache_seconds: float = 1.0) -> None:
        self.alias = alias
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # no describe-time query (registering must not touch the database)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self.cache_seconds:
                self._cached = (now, self._read())
            families = self._cached[1]
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        from django.db import close_old_connections

        up = GaugeMetricFamily(
            "clusterkit_cluster_up", "1 when the cluster tables could be read at this scrape."
        )
        try:
            families = cluster_families(self.alias)
        except Exception:
            logger.warning("cluster metrics could not be read", exc_info=True)
            up.add_metric([], 0)
            return [up]
        finally:
            if threading.current_thread() is not threading.main_thread():
                close_old_connections()
        up.add_metric([], 1)
        return [up, *families]


def cluster_families(alias: str = "default") -> list[GaugeMetricFamily]:
    """The cluster-wide gauges, read now (see :class:`ClusterCollector`)."""
    from . import dashboard

    state = dashboard.cluster_counts(alias)
    runners = GaugeMetricFamily(
        "clusterkit_cluster_runners", "Registered runners, by state (healthy, draining, stale).",
        labels=["state"],
    )
    for label, n in state.runner_states.items():
        runners.add_metric([label], n)
    heartbeat = GaugeMetricFamily(
        "clusterkit_cluster_runner_heartbeat_age_seconds",
        "Seconds since each runner's last heartbeat.", labels=["runner"],
    )
    healthy = GaugeMetricFamily(
        "clusterkit_cluster_runner_healthy",
        "1 when a runner heartbeats within the lease lifetime and is not draining.",
        labels=["runner"],
    )
    for r in state.runners:
        heartbeat.add_metric([str(r.machine_id)], r.heartbeat_age)
        healthy.add_metric([str(r.machine_id)], 1 if r.healthy else 0)
    shards = GaugeMetricFamily(
        "clusterkit_cluster_shards_held", "Shards leased, by shard group and owner "
        "(runner \"\" for unowned or expired leases).", labels=["shard_group", "runner"],
    )
    for (group, runner), n in state.shards.items():
        shards.add_metric([group, runner], n)
    backlog = GaugeMetricFamily(
        "clusterkit_cluster_backlog_messages",
        "Unprocessed messages, by shard group and state (due, scheduled).",
        labels=["shard_group", "state"],
    )
    for (group, label), n in state.backlog.items():
        backlog.add_metric([group, label], n)
    jobs = GaugeMetricFamily(
        "clusterkit_cluster_jobs", "Jobs not finished yet, by queue and status "
        "(READY, SCHEDULED, RUNNING).", labels=["queue", "status"],
    )
    for (queue, label), n in state.jobs.items():
        jobs.add_metric([queue, label], n)
    workflows = GaugeMetricFamily(
        "clusterkit_cluster_workflow_executions", "Workflow executions, by status.",
        labels=["status"],
    )
    for label, n in state.workflows.items():
        workflows.add_metric([label], n)
    return [runners, heartbeat, healthy, shards, backlog, jobs, workflows]


_installed = False


def install(registry: Any = REGISTRY) -> None:
    """Register the runner and cluster collectors once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    from .conf import cluster_settings

    registry.register(RunnerCollector())
    if cluster_settings.METRICS_CLUSTER_COLLECTOR:
        registry.register(ClusterCollector())


def serve(port: int, addr: str = "0.0.0.0") -> Any:
    """Serve ``/metrics`` of this process on ``addr:port`` (a daemon thread)."""
    from prometheus_client import start_http_server

    install()
    server, _thread = start_http_server(port, addr)
    return server
