"""Jobs benchmarks: ``python -m bench jobs [--quick] [--only NAMES]``.

The same no-op task through clusterkit's jobs (``ClusterTaskBackend``, one runner
subprocess), Procrastinate (one worker, concurrency 1), django-tasks-db (one
``db_worker``, its default 1 s poll) and Celery (Redis broker, one prefork worker with
concurrency 1), in one run on the same PostgreSQL and Redis. For each: the enqueue rate
one at a time and in bulk (no worker running), the drain rate of a backlog (first → last
task start, as the tasks saw them) and the enqueue → start latency to an idle worker.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import core
from bench.core import ROOT, log, pct, table

core.SETTINGS = "bench.settings_jobs"  # runners and children load the jobs app too
PEERS = ("clusterkit", "procrastinate", "django-tasks-db", "celery")


@dataclasses.dataclass
class Result:
    """What one system measured; NaN where it does not apply."""

    name: str
    single: float = float("nan")  # enqueues/s, one at a time
    bulk: float = float("nan")  # enqueues/s, in bulk
    bulk_how: str = ""
    drain: float = float("nan")  # tasks/s, first → last start
    p50: float = float("nan")  # enqueue → start, ms
    p99: float = float("nan")
    latency_n: int = 0


def wait_until(check: Callable[[], bool], timeout: float, label: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label} did not finish within {timeout:.0f} s")
        time.sleep(0.01)


def rate(starts: list[float]) -> float:
    starts = sorted(starts)
    return (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else float("nan")


def stop(proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# -- clusterkit ------------------------------------------------------------------------


def ck_clean() -> None:
    core.clean()
    core.sql("TRUNCATE jobs_job")


def ck_outcomes() -> list[tuple[float, float]]:
    """``(started_at, lag)`` of every finished attempt, from the replies."""
    rows = core.sql("SELECT payload FROM clusterkit_reply WHERE kind = 0")
    out = []
    for (payload,) in rows:
        outcome = json.loads(payload)
        if outcome.get("status") != "SUCCESSFUL":
            raise RuntimeError(f"a clusterkit job did not succeed: {outcome}")
        out.append((float(outcome["started_at"]), float(outcome["return_value"])))
    return out


def bench_clusterkit(opts: argparse.Namespace) -> list[Result]:
    from bench.job_tasks import ck_noop, ck_noop_sync

    result = Result("clusterkit")
    ck_clean()
    n = opts.single
    t0 = time.perf_counter()
    for _ in range(n):
        ck_noop.enqueue(time.time())
    result.single = n / (time.perf_counter() - t0)
    ck_drain(result, ck_noop, opts)
    sync = Result("clusterkit, sync task")
    ck_drain(sync, ck_noop_sync, opts)
    return [result, sync]


def ck_drain(result: Result, task: Any, opts: argparse.Namespace) -> None:
    """Bulk enqueue, drain with one runner, then sequential latency, for ``task``."""
    from jobs import engine

    ck_clean()
    n = opts.jobs
    log(f"{result.name}: enqueue_many of {n:,} jobs in batches of 500")
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        engine.enqueue_many([
            engine.NewJob(name=task.module_path, args=[time.time()], kwargs={})
            for _ in range(min(500, n - start))
        ])
    result.bulk, result.bulk_how = n / (time.perf_counter() - t0), "enqueue_many, batches of 500"
    log(f"{result.name}: draining {n:,} jobs with one runner")
    runner = core.RunnerProcess().start()
    spy = None
    try:
        runner.wait_ready()
        if opts.profile is not None:
            spy = core.start_profile(runner.pid, opts.profile, f"jobs-drain-{task.name}")
        core.wait_replies(n, max(60.0, n / 50), "clusterkit drain")
    finally:
        if spy is not None:
            core.stop_profile(spy)
        runner.stop()
    result.drain = rate([s for s, _ in ck_outcomes()])
    count = opts.latency
    log(f"{result.name}: {count} sequential enqueues to an idle runner")
    with core.runners(1):
        core.sql("TRUNCATE jobs_job")
        took = []
        for i in range(count + 5):
            sent_at = time.time()
            task.enqueue(sent_at)
            took.append((time.time() - sent_at) * 1000)
            wait_until(lambda i=i: core.reply_count() > i, 30, "a clusterkit job")
            time.sleep(0.005)
        lags = [lag * 1000 for _, lag in sorted(ck_outcomes())[5:]]
    ck_clean()
    result.p50, result.p99, result.latency_n = pct(lags, 50), pct(lags, 99), len(lags)
    after = [lag - t for lag, t in zip(lags, took[5:], strict=True)]
    log(f"{result.name}: enqueue() itself p50 {pct(took[5:], 50):.2f} ms; enqueue returned →"
        f" start p50 {pct(after, 50):.2f} ms, p99 {pct(after, 99):.2f} ms")


# -- Procrastinate ---------------------------------------------------------------------


def bench_procrastinate(opts: argparse.Namespace) -> list[Result]:
    from bench import procrastinate_peer as peer

    result = Result("procrastinate")
    peer.ensure_database()
    peer.clean()
    result.single = opts.single / peer.defer_single(opts.single)
    peer.clean()
    n = opts.peer_jobs
    result.bulk, result.bulk_how = n / peer.defer_batch(n), "batch_defer, batches of 500"
    # The core suite's procrastinate benchmark measures drain and latency the same way.
    drain, latency = core.bench_procrastinate(opts)
    result.drain, result.p50, result.p99 = drain, latency["p50"], latency["p99"]
    result.latency_n = int(latency["n"])
    return [result]


# -- django-tasks-db -------------------------------------------------------------------


def db_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", f"--settings={core.SETTINGS}",
         "--backend", "db", "--no-startup-delay", "-v", "0", *args],
        cwd=ROOT, env=core.child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        text=True,
    )


def db_rows() -> list[tuple[float, float]]:
    """``(started_at, lag)`` of every finished task."""
    from django_tasks_db.models import DBTaskResult

    rows = []
    for started_at, status, value in DBTaskResult.objects.values_list(
        "started_at", "status", "return_value"
    ):
        if status != "SUCCESSFUL":
            raise RuntimeError(f"a django-tasks-db task ended {status}")
        rows.append((started_at.timestamp(), float(value)))
    return rows


def bench_db(opts: argparse.Namespace) -> list[Result]:
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    from bench.job_tasks import db_noop

    result = Result("django-tasks-db")
    DBTaskResult.objects.all().delete()
    t0 = time.perf_counter()
    for _ in range(opts.single):
        db_noop.enqueue(time.time())
    result.single = opts.single / (time.perf_counter() - t0)
    DBTaskResult.objects.all().delete()
    n = opts.peer_jobs
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        with transaction.atomic():
            for _ in range(min(500, n - start)):
                db_noop.enqueue(time.time())
    result.bulk, result.bulk_how = n / (time.perf_counter() - t0), "500 per transaction"
    log(f"django-tasks-db: draining {n:,} tasks with one db_worker --batch")
    worker = db_worker("--batch")
    try:
        worker.wait(max(120.0, n / 10))
    finally:
        stop(worker)
    result.drain = rate([s for s, _ in db_rows()])
    DBTaskResult.objects.all().delete()
    count = opts.db_latency
    log(f"django-tasks-db: {count} sequential enqueues to an idle db_worker (1 s poll)")
    worker = db_worker()
    try:
        time.sleep(1.5)
        for i in range(count):
            db_noop.enqueue(time.time())
            wait_until(
                lambda i=i: DBTaskResult.objects.filter(status="SUCCESSFUL").count() > i,
                30, "a django-tasks-db task",
            )
            time.sleep(0.005)
    finally:
        stop(worker)
    lags = [lag * 1000 for _, lag in db_rows()]
    DBTaskResult.objects.all().delete()
    result.p50, result.p99, result.latency_n = pct(lags, 50), pct(lags, 99), len(lags)
    return [result]


# -- Celery ----------------------------------------------------------------------------


def celery_worker() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.celery_peer", "worker", "--pool",
         "prefork", "--concurrency", "1", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "WARNING"],
        cwd=ROOT, env=core.child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        text=True,
    )


def bench_celery(opts: argparse.Namespace) -> list[Result]:
    from celery import group

    from bench import celery_peer as peer

    result = Result("celery")
    peer.clean()
    t0 = time.perf_counter()
    for _ in range(opts.single):
        peer.noop.apply_async((time.time(),))
    result.single = opts.single / (time.perf_counter() - t0)
    peer.clean()
    n = opts.peer_jobs
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        group(peer.noop.s(time.time()) for _ in range(min(500, n - start))).apply_async()
    result.bulk, result.bulk_how = n / (time.perf_counter() - t0), "group, batches of 500"
    log(f"celery: draining {n:,} tasks with one prefork worker (concurrency 1)")
    worker = celery_worker()
    try:
        wait_until(lambda: peer.started() >= n, max(120.0, n / 20), "the celery drain")
    finally:
        stop(worker)
    result.drain = rate([s for s, _ in peer.starts()])
    peer.clean()
    count = opts.peer_latency_jobs
    log(f"celery: {count} sequential enqueues to an idle worker")
    worker = celery_worker()
    try:
        peer.noop.apply_async((time.time(),))
        wait_until(lambda: peer.started() >= 1, 60, "the celery worker start")
        for i in range(count + 4):
            time.sleep(0.005)
            peer.noop.apply_async((time.time(),))
            wait_until(lambda i=i: peer.started() > i + 1, 30, "a celery task")
    finally:
        stop(worker)
    lags = [lag * 1000 for _, lag in peer.starts()[5:]]
    peer.clean()
    result.p50, result.p99, result.latency_n = pct(lags, 50), pct(lags, 99), len(lags)
    return [result]


# -- entry point -----------------------------------------------------------------------


def report(results: dict[str, Result]) -> None:
    rows = [
        [r.name, r.single, r.bulk, r.bulk_how, r.drain, r.p50, r.p99, r.latency_n]
        for r in results.values()
    ]
    table("Jobs: one no-op task, one worker process, same PostgreSQL/Redis",
          ["system", "enqueue/s one by one", "enqueue/s bulk", "bulk as", "drain tasks/s",
           "enqueue→start p50 ms", "p99 ms", "n"], rows)
    ck = results.get("clusterkit")
    if ck is None:
        return
    ratios = []
    for r in results.values():
        if not r.name.startswith("clusterkit"):
            ratios.append([f"clusterkit ÷ {r.name}", ck.single / r.single, ck.bulk / r.bulk,
                           ck.drain / r.drain, r.p50 / ck.p50, r.p99 / ck.p99])
    table("Ratios (above 1: clusterkit is ahead; latency as peer ÷ clusterkit)",
          ["", "enqueue one by one", "enqueue bulk", "drain", "p50 latency", "p99 latency"],
          ratios)
    checks = [("drain ≥ 20x Procrastinate", "procrastinate", lambda p: ck.drain >= 20 * p.drain),
              ("drain ≥ Celery prefork", "celery", lambda p: ck.drain >= p.drain)]
    rows = [[label, "ok" if ok(results[name]) else "MISSED"]
            for label, name, ok in checks if name in results]
    rows += [["latency p50 ≤ 2 ms", "ok" if ck.p50 <= 2 else "MISSED"],
             ["latency p99 ≤ 10 ms", "ok" if ck.p99 <= 10 else "MISSED"]]
    table("Targets", ["target", "met"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench jobs",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PEERS),
                        help=f"comma-separated subset of {', '.join(PEERS)}")
    parser.add_argument("--quick", action="store_true", help="a quarter of the counts")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the clusterkit runner while it drains, into DIR")
    opts = parser.parse_args(argv)
    chosen = [p.strip() for p in opts.only.split(",") if p.strip()]
    if set(chosen) - set(PEERS):
        parser.error(f"unknown systems: {', '.join(sorted(set(chosen) - set(PEERS)))}")
    scale = 0.25 if opts.quick else 1.0
    opts.single = int(1000 * scale)
    opts.jobs = int(10000 * scale)
    opts.latency = int(300 * scale)
    opts.peer_jobs = int(2000 * scale)
    opts.peer_latency_jobs = int(200 * scale)
    opts.db_latency = max(5, int(20 * scale))
    core.setup()
    started = time.monotonic()
    benches = {"clusterkit": bench_clusterkit, "procrastinate": bench_procrastinate,
               "django-tasks-db": bench_db, "celery": bench_celery}
    results = {r.name: r for name in PEERS if name in chosen for r in benches[name](opts)}
    report(results)
    command = " ".join(["python -m bench jobs", *(argv or sys.argv[1:])])
    print(f"\n({command}; {time.monotonic() - started:.0f} s; {os.cpu_count()} CPUs;"
          f" load average {os.getloadavg()[0]:.2f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
