"""The peer: Procrastinate 3.10 on the same PostgreSQL, measured in the same run.

``app`` is importable (``procrastinate --app=bench.procrastinate_peer.app worker``);
the benchmark runs the worker as ``python -m bench.procrastinate_peer worker --out F``,
which writes the start times and defer→start lags its no-op task saw to ``F`` (JSON)
when the worker stops: at once when caught up (``--drain``), else on SIGTERM.
Database ``procrastinate_bench`` is created and given Procrastinate's schema if missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector

PG = {
    "host": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
    "port": os.environ.get("BENCH_PG_PORT", "5432"),
    "user": os.environ.get("BENCH_PG_USER", "postgres"),
    "password": os.environ.get("BENCH_PG_PASSWORD", ""),
}
DB_NAME = "procrastinate_bench"


def conninfo(dbname: str = DB_NAME) -> str:
    """A libpq connection string for ``dbname`` on the benchmark server."""
    return psycopg.conninfo.make_conninfo(dbname=dbname, **{k: v for k, v in PG.items() if v})


app = App(connector=PsycopgConnector(conninfo=conninfo()))
STARTS: list[float] = []
LAGS: list[float] = []


@app.task(name="bench_noop")
async def noop(sent_at: float) -> None:
    """Does nothing but note when it started and how long after its defer."""
    now = time.time()
    STARTS.append(now)
    LAGS.append(now - sent_at)


def ensure_database() -> None:
    """Create ``procrastinate_bench`` and apply Procrastinate's schema, when missing."""
    with psycopg.connect(conninfo("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
    if row is None or row[0] is None:

        async def apply() -> None:
            async with app.open_async():
                await app.schema_manager.apply_schema_async()

        asyncio.run(apply())


def clean() -> None:
    """Empty the job, event and worker tables."""
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_workers, "
            "procrastinate_periodic_defers CASCADE"
        )


def defer_batch(count: int, batch: int = 500) -> float:
    """Defer ``count`` no-op jobs with ``batch_defer``; returns the seconds it took."""

    async def run() -> float:
        async with app.open_async():
            t0 = time.perf_counter()
            for start in range(0, count, batch):
                n = min(batch, count - start)
                await noop.batch_defer_async(*({"sent_at": time.time()} for _ in range(n)))
            return time.perf_counter() - t0

    return asyncio.run(run())


def defer_single(count: int) -> float:
    """Defer ``count`` no-op jobs one ``defer`` at a time; returns the seconds it took."""

    async def run() -> float:
        async with app.open_async():
            t0 = time.perf_counter()
            for _ in range(count):
                await noop.defer_async(sent_at=time.time())
            return time.perf_counter() - t0

    return asyncio.run(run())


def defer_sequential(count: int, timeout: float = 60.0) -> int:
    """Defer ``count`` jobs one at a time, each once the previous one has run (idle worker)."""

    async def run() -> int:
        done = 0
        deadline = time.monotonic() + timeout
        connect = psycopg.AsyncConnection.connect(conninfo(), autocommit=True)
        async with app.open_async(), await connect as conn:
            for _ in range(count):
                if time.monotonic() > deadline:
                    break
                job_id = await noop.defer_async(sent_at=time.time())
                while time.monotonic() < deadline:
                    cur = await conn.execute(
                        "SELECT status FROM procrastinate_jobs WHERE id = %s", [job_id]
                    )
                    row = await cur.fetchone()
                    if row is not None and row[0] in ("succeeded", "failed"):
                        done += 1
                        break
                    await asyncio.sleep(0.002)
                await asyncio.sleep(0.005)  # the worker goes back to waiting
        return done

    return asyncio.run(run())


def worker_main(argv: list[str]) -> None:
    """Run one worker (concurrency 1, Procrastinate's default) and dump what the task saw."""
    parser = argparse.ArgumentParser(prog="bench.procrastinate_peer worker")
    parser.add_argument("--out", required=True)
    parser.add_argument("--drain", action="store_true", help="stop when the queue is empty")
    opts = parser.parse_args(argv)
    options: dict[str, Any] = {"wait": not opts.drain, "install_signal_handlers": True}
    print("procrastinate worker ready", flush=True)
    try:
        app.run_worker(**options)
    finally:
        with open(opts.out, "w") as fh:
            json.dump({"starts": STARTS, "lags": LAGS}, fh)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main(sys.argv[2:])
    else:
        ensure_database()
        print("procrastinate_bench is ready")
