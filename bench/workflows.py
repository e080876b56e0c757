"""Workflow benchmarks: ``python -m bench workflows [--count N] [--latency-count N]``.

A workflow of three no-op activities, on clusterkit (one ``runworker`` subprocess,
``bench.settings_workflows``) and on DBOS Transact (:mod:`bench.dbos_peer`, its system
database on the same PostgreSQL), in one run:

- throughput: N workflows started one after another from this process, first start →
  last completion;
- latency: one workflow at a time, start → completion seen by the caller;
- baseline: three persisted entity calls in a row (``BenchCounter.increment.call``) on
  the same runner, the floor a three-step workflow is built on.

Importing this module (Django autodiscovers ``workflows`` modules) only registers the
benchmark's workflow; the benchmark runs as ``__main__``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ != "__main__":
    from bench.workflow_steps import noop, three_noops  # noqa: F401  (registered by import)


def _completed() -> int:
    from bench import core

    return int(core.sql(
        "SELECT count(*) FROM jobs_workflowexecution WHERE status = 'completed'"
    )[0][0])


def _clean() -> None:
    from bench import core

    core.sql("TRUNCATE jobs_workflowstep, jobs_workflowexecution, jobs_workflowsignal CASCADE")


def bench_clusterkit(count: int, latency_count: int) -> dict[str, object]:
    from bench import core
    from bench.entities import BenchCounter
    from bench.workflow_steps import three_noops

    _clean()
    with core.runners(1):
        for n in range(5):  # warm up the runner and this process
            three_noops.start(n).result(timeout=30)
        _clean()
        started = time.perf_counter()
        handles = [three_noops.start(n) for n in range(count)]
        deadline = time.monotonic() + 300
        while _completed() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{_completed()} of {count} workflows completed")
            time.sleep(0.02)
        rate = count / (time.perf_counter() - started)
        assert [h.result(timeout=5) for h in handles[:10]] == [3 * n for n in range(10)]
        latencies = []
        for n in range(latency_count):
            t0 = time.perf_counter()
            handle = three_noops.start(n)
            while _status(handle.execution_id) != "completed":
                time.sleep(0.002)
            latencies.append((time.perf_counter() - t0) * 1000)
        baseline = []
        counter = BenchCounter.client("workflow-baseline")
        for _ in range(latency_count):
            t0 = time.perf_counter()
            for _ in range(3):
                counter.increment.call(by=1)
            baseline.append((time.perf_counter() - t0) * 1000)
    _clean()
    return {"rate": rate, "latencies": latencies, "baseline": baseline}


def _status(execution_id: str) -> str:
    from bench import core

    rows = core.sql("SELECT status FROM jobs_workflowexecution WHERE id = %s", [execution_id])
    return str(rows[0][0]) if rows else ""


def bench_dbos(count: int, latency_count: int) -> dict[str, object] | str:
    """DBOS's figures, or why it could not run."""
    try:
        import dbos  # noqa: F401
    except ImportError as exc:
        return f"dbos is not installed ({exc}); pip install -e '.[bench]'"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dbos.json"
        proc = subprocess.run(
            [sys.executable, "-m", "bench.dbos_peer", str(count), str(latency_count), str(out)],
            cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
            timeout=600,
        )
        if proc.returncode != 0 or not out.exists():
            return f"DBOS failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"
        return dict(json.loads(out.read_text()))


def _create_database() -> None:
    import psycopg
    from psycopg.conninfo import make_conninfo

    from bench import settings as base
    from bench.settings_workflows import DB_NAME

    info = make_conninfo(dbname="postgres", host=base.PG_HOST, port=base.PG_PORT,
                         user=base.PG_USER, password=base.PG_PASSWORD or None)
    with psycopg.connect(info, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench workflows",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="workflows for throughput")
    parser.add_argument("--latency-count", type=int, default=50, help="sequential workflows")
    opts = parser.parse_args(argv)
    from bench import core

    core.SETTINGS = "bench.settings_workflows"  # the jobs app, on a database of its own
    _create_database()
    core.setup()
    from django.db import connection

    started = time.monotonic()
    core.log(f"clusterkit: {opts.count} workflows, then {opts.latency_count} one at a time")
    ck = bench_clusterkit(opts.count, opts.latency_count)
    core.log("DBOS: the same")
    peer = bench_dbos(opts.count, opts.latency_count)
    ck_lat, ck_rate = list(ck["latencies"]), float(ck["rate"])
    rows = [["clusterkit workflow", ck_rate, core.pct(ck_lat, 50), core.pct(ck_lat, 99)]]
    if isinstance(peer, dict):
        peer_lat, peer_rate = list(peer["latencies"]), float(peer["rate"])
        rows.append(["DBOS workflow", peer_rate, core.pct(peer_lat, 50), core.pct(peer_lat, 99)])
    base = list(ck["baseline"])
    rows.append(["clusterkit 3 persisted calls (baseline)", float("nan"), core.pct(base, 50),
                 core.pct(base, 99)])
    core.table("Three no-op activities per workflow, one runner",
               ["system", "workflows/s", "p50 ms", "p99 ms"], rows)
    if isinstance(peer, dict):
        ratio = core.pct(ck_lat, 50) / core.pct(peer_lat, 50)
        print(f"\n  clusterkit/DBOS: throughput {ck_rate / peer_rate:.2f}x, p50 latency "
              f"{ratio:.2f}x")
    else:
        print(f"\n  DBOS not measured: {peer}")
    server = core.sql("SHOW server_version")[0][0]
    command = " ".join(["python -m bench workflows", *(argv or sys.argv[1:])])
    print(f"\n({command}; {time.monotonic() - started:.0f} s; PostgreSQL {server} db "
          f"{connection.settings_dict['NAME']}; {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.2f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
