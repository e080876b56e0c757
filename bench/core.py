"""Core benchmarks: ``python -m bench core [--only NAMES] [--repeat N] [--profile DIR]``.

Every clusterkit figure comes from real runner subprocesses (``manage.py runworker
--settings=bench.settings``) on PostgreSQL, driven from this process or from client
subprocesses (:mod:`bench.sender`); Procrastinate (:mod:`bench.procrastinate_peer`) and a
Redis PING loop are measured in the same run on the same servers. Benchmarks:

- ``throughput``: persisted calls, first send → every reply committed, sent in bulk
  from this process, in bulk from 4 client processes, and one ``.send()`` at a time
  from 4 client processes; then the bulk workload again on 1, 2 and 3 runners;
- ``latency``: persisted call on an idle runner, send → handler start (and the whole
  ``.call()``), sequential;
- ``volatile``: volatile ``.call()`` round trip to the runner process vs Redis PING;
- ``memory``: runner RSS holding 100,000 idle entities;
- ``procrastinate``: the peer's drain rate and defer → start latency.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "bench.settings"
READY = re.compile(r"runner (\d+) listening on (\S+), holding (\d+) shards")
MiB = 1024 * 1024

# -- reporting -----------------------------------------------------------------------


def log(message: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: Sequence[float], p: int) -> float:
    """The ``p``-th percentile (1 to 99) of ``values``."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain-text table."""
    cells = [[str(c) for c in header]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclasses.dataclass
class Figure:
    """One line of the summary: our figure, the reference, and the target's verdict."""

    name: str
    value: float
    unit: str
    reference: str = ""
    ratio: float = float("nan")
    target: str = ""
    met: bool | None = None


SUMMARY: list[Figure] = []

# -- database ------------------------------------------------------------------------


def ensure_database() -> None:
    """Create ``clusterkit_bench`` if missing (run ``migrate`` after ``django.setup``)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from bench import settings as bench_settings

    info = make_conninfo(
        dbname="postgres",
        host=bench_settings.PG_HOST,
        port=bench_settings.PG_PORT,
        user=bench_settings.PG_USER,
        password=bench_settings.PG_PASSWORD or None,
    )
    with psycopg.connect(info, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [bench_settings.DB_NAME]
        ).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{bench_settings.DB_NAME}"')


def setup() -> None:
    """Django on ``bench.settings``, the database created and migrated."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    ensure_database()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def sql(query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run ``query`` on this process's connection; rows when it returns any."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, list(params))
        return list(cursor.fetchall()) if cursor.description else []


def clean(runners_stopped: bool = True) -> None:
    """Empty the message tables; with no runner alive, also forget runners and leases."""
    from clusterkit.routing import router

    sql("TRUNCATE clusterkit_message, clusterkit_reply")
    if runners_stopped:
        sql("UPDATE clusterkit_shardlease SET runner_id = NULL, expires_at = NULL")
        sql("DELETE FROM clusterkit_runner")
    router.cache.clear()


def reply_count() -> int:
    return int(sql("SELECT count(*) FROM clusterkit_reply")[0][0])


def wait_replies(expected: int, timeout: float, label: str, every: float = 0.01) -> float:
    """Poll until ``expected`` replies are committed; returns the time.time() it happened."""
    deadline = time.monotonic() + timeout
    next_log = time.monotonic() + 2.0
    while True:
        count = reply_count()
        now = time.time()
        if count >= expected:
            return now
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: {count:,} of {expected:,} replies after {timeout:.0f} s")
        if time.monotonic() > next_log:
            log(f"{label}: {count:,}/{expected:,} replies")
            next_log = time.monotonic() + 2.0
        time.sleep(every)


def check_all_succeeded(expected: int) -> None:
    rows = sql("SELECT status, count(*) FROM clusterkit_reply GROUP BY status")
    counts = dict(rows)
    if counts.get(0, 0) != expected or len(counts) != 1:
        raise RuntimeError(f"replies by status {counts}, expected {expected} successes")


# -- processes -----------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class RunnerProcess:
    """``manage.py runworker`` in a subprocess: started, awaited ready, read, stopped."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.lines: collections.deque[str] = collections.deque(maxlen=200)
        self.ready = threading.Event()
        self.runner_id = 0
        self.address = ""
        self.shards = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> RunnerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runworker", f"--settings={SETTINGS}"],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            match = READY.search(line)
            if match:
                self.runner_id, self.address = int(match[1]), match[2]
                self.shards = int(match[3])
                self.ready.set()

    def wait_ready(self, timeout: float = 60.0) -> RunnerProcess:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("runner did not start:\n" + "\n".join(self.lines))
        return self

    def memory(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) in bytes, from /proc/<pid>/status."""
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
        return out

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"runner {self.pid} ignored SIGTERM for {timeout:.0f} s; killing it")
            self.proc.kill()
            self.proc.wait(10)


def wait_balanced(count: int, shards: int, timeout: float = 30.0) -> dict[int, int]:
    """Wait until ``count`` runners hold all ``shards`` between them; ``{runner: shards}``."""
    deadline = time.monotonic() + timeout
    while True:
        rows = sql(
            "SELECT runner_id, count(*) FROM clusterkit_shardlease "
            "WHERE runner_id IS NOT NULL AND expires_at > now() GROUP BY runner_id"
        )
        held = {int(r): int(n) for r, n in rows}
        if len(held) == count and sum(held.values()) == shards:
            return held
        if time.monotonic() > deadline:
            raise TimeoutError(f"shards not spread over {count} runners: {held}")
        time.sleep(0.2)


@contextmanager
def runners(
    count: int = 1, profile: Path | None = None, label: str = ""
) -> Iterator[list[RunnerProcess]]:
    """``count`` fresh runner subprocesses on clean tables, stopped (SIGTERM) afterwards."""
    from clusterkit.conf import cluster_settings

    clean()
    procs: list[RunnerProcess] = []
    spy: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(count):
            procs.append(RunnerProcess().start())
            procs[-1].wait_ready()
        wait_balanced(count, int(cluster_settings.SHARDS_PER_GROUP))
        if profile is not None:
            spy = start_profile(procs[0].pid, profile, label)
        yield procs
    except BaseException:
        diagnose(procs)
        raise
    finally:
        if spy is not None:
            stop_profile(spy)
        for proc in procs:
            proc.stop()
        clean()


def diagnose(procs: list[RunnerProcess]) -> None:
    """On a failed step: the unhandled messages and each runner's last output lines."""
    try:
        rows = sql(
            "SELECT m.id, m.entity_type, m.entity_id, m.shard_id, m.last_read, m.attempts,"
            " m.processed, l.runner_id, l.epoch FROM clusterkit_message m"
            " LEFT JOIN clusterkit_reply r ON r.request_id = m.id"
            " LEFT JOIN clusterkit_shardlease l"
            " ON l.shard_group = m.shard_group AND l.shard_id = m.shard_id"
            " WHERE r.id IS NULL ORDER BY m.id LIMIT 20"
        )
        log("messages without a reply (id, type, entity, shard, last_read, attempts, "
            f"processed, lease runner, epoch): {rows}")  # fmt: skip
    except Exception as exc:  # the database may be what failed
        log(f"could not list unanswered messages: {exc!r}")
    for proc in procs:
        log(f"runner pid {proc.pid} (id {proc.runner_id}), last output:")
        for line in list(proc.lines)[-30:]:
            print(f"    {line}", file=sys.stderr)


def start_profile(pid: int, directory: Path, label: str) -> subprocess.Popen[bytes]:
    """py-spy record (collapsed stacks, every thread, idle frames dropped) on ``pid``."""
    directory.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    out = directory / f"{label or 'runner'}-{pid}.txt"
    log(f"profiling runner {pid} with py-spy into {out}")
    proc = subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "250",
            "--threads",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return proc


def stop_profile(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def spawn_senders(
    clients: int, n: int, entities: int, batch: int, mode: str, timeout: float = 60.0
) -> tuple[float, list[subprocess.Popen[str]]]:
    """Start ``clients`` :mod:`bench.sender` processes, wait until all are set up, release them.

    Returns the ``time.time()`` of the release and the processes.
    """
    shares = [n // clients + (1 if k < n % clients else 0) for k in range(clients)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.sender", "--n", str(shares[k]), "--entities",
             str(entities), "--batch", str(batch), "--offset", str(sum(shares[:k])),
             "--mode", mode],
            cwd=ROOT, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for k in range(clients)
    ]  # fmt: skip
    timer = threading.Timer(timeout, lambda: [p.kill() for p in procs])
    timer.start()  # bounds the readline()s below
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"sender {proc.pid} did not start")
    finally:
        timer.cancel()
    start = time.time()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return start, procs


def collect_senders(
    procs: list[subprocess.Popen[str]], timeout: float = 120.0
) -> list[dict[str, Any]]:
    """The JSON line each sender printed when done."""
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"sender {proc.pid} failed ({proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


# -- clusterkit benchmarks -----------------------------------------------------------


@dataclasses.dataclass
class Throughput:
    label: str
    calls: int
    seconds: float
    send_seconds: float
    late: float = 0.0

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


def run_throughput(
    label: str,
    n: int,
    entities: int,
    batch: int,
    clients: int,
    mode: str,
    runner_count: int = 1,
    profile: Path | None = None,
    slug: str = "throughput",
) -> Throughput:
    """One throughput run on fresh runners; the clock runs from first send to last commit."""
    from bench.sender import send_calls

    log(f"throughput: {label}")
    with runners(runner_count, profile, slug):
        if clients == 1:
            t0 = time.time()
            send_calls(n, entities, batch, 0, mode, "tp")
            sent = time.time()
            done = wait_replies(n, 120.0, label)
            late = 0.0
        else:  # every sender is set up and connected before the clock starts
            t0, procs = spawn_senders(clients, n, entities, batch, mode)
            done = wait_replies(n, 120.0 + (t0 - time.time()), label)
            results = collect_senders(procs)
            sent = max(r["ended"] for r in results)
            late = max(r["began"] for r in results) - t0
        check_all_succeeded(n)
    return Throughput(label, n, done - t0, sent - t0, late)


def bench_throughput(opts: argparse.Namespace, peer_rate: float | None) -> None:
    n, entities, batch = opts.calls, 1000, 500
    variants: list[tuple[str, int, int, str, int]] = [
        (f"bulk, 1 client (send_many x{batch})", n, 1, "bulk", 1),
        (f"bulk, 4 clients (send_many x{batch})", n, 4, "bulk", 1),
        ("single .send(), 4 clients", max(4, n // 4), 4, "single", 1),
    ]
    if not opts.quick:
        variants += [(f"bulk, 1 client, {k} runners", n, 1, "bulk", k) for k in (2, 3)]
    results: list[Throughput] = []
    for label, count, clients, mode, runner_count in variants:
        runs = [
            run_throughput(
                label,
                count,
                entities,
                batch,
                clients,
                mode,
                runner_count,
                opts.profile if i == 0 and runner_count == 1 else None,
            )
            for i in range(opts.repeat)
        ]
        runs.sort(key=lambda r: r.rate)
        results.append(runs[len(runs) // 2])
    target = 5000.0
    rows = []
    for r in results:
        ratio = r.rate / peer_rate if peer_rate else float("nan")
        rows.append(
            [
                r.label,
                r.calls,
                r.seconds,
                r.calls / r.send_seconds,
                r.rate,
                ratio,
                r.rate / target,
                "ok" if r.rate >= target else "MISSED",
            ]
        )
    table(
        f"Persisted throughput (send → handled → reply committed), {entities:,} entities"
        + (f", median of {opts.repeat}" if opts.repeat > 1 else ""),
        [
            "workload",
            "calls",
            "seconds",
            "sent/s",
            "calls/s",
            "x procrastinate",
            "x target",
            ">= 5,000/s",
        ],
        rows,
    )
    best = max(results[:2], key=lambda r: r.rate)
    peer = f"procrastinate {peer_rate:,.0f}/s" if peer_rate else ""
    SUMMARY.append(
        Figure(
            f"persisted throughput ({best.label})",
            best.rate,
            "calls/s",
            peer,
            best.rate / peer_rate if peer_rate else float("nan"),
            ">= 5,000/s and >= 20x peer",
            best.rate >= target and (peer_rate is None or best.rate >= 20 * peer_rate),
        )
    )
    single = results[2]
    SUMMARY.append(
        Figure(
            f"persisted throughput ({single.label})",
            single.rate,
            "calls/s",
            peer,
            single.rate / peer_rate if peer_rate else float("nan"),
            "(info)",
        )
    )
    for r in results[3:]:
        SUMMARY.append(
            Figure(f"persisted throughput ({r.label})", r.rate, "calls/s", target="(info)")
        )


def latency_stages(count: int) -> dict[str, list[float]]:
    """Where an idle call's time goes: ``.send()`` then polling its reply row.

    Per call, in ms: the ``.send()`` itself (INSERT and wake-up NOTIFY committed), send
    returned → claimed (``last_read``, PostgreSQL's clock, 1 ms resolution, same host),
    and claimed → handler start.
    """
    from bench.entities import BenchClock

    stages: dict[str, list[float]] = {"send": [], "claim": [], "dispatch": []}
    ids: list[tuple[int, float, float]] = []
    deadline = time.monotonic() + 60
    for i in range(count):
        if time.monotonic() > deadline:
            break
        sent = time.time()
        message_id = BenchClock.client(f"clock-{i % 10}").stamp.send(sent_at=sent)
        returned = time.time()
        assert message_id is not None
        while time.monotonic() < deadline:
            if sql("SELECT 1 FROM clusterkit_reply WHERE request_id = %s", [message_id]):
                break
            time.sleep(0.0005)
        ids.append((message_id, sent, returned))
        time.sleep(0.002)
    rows = sql(
        "SELECT m.id, m.last_read, r.payload FROM clusterkit_message m "
        "JOIN clusterkit_reply r ON r.request_id = m.id WHERE m.id = ANY(%s)",
        [[i for i, _, _ in ids]],
    )
    found = {int(i): (int(last_read), float(payload)) for i, last_read, payload in rows}
    for message_id, sent, returned in ids:
        if message_id not in found:
            continue
        last_read, lag = found[message_id]
        stages["send"].append((returned - sent) * 1000)
        stages["claim"].append(last_read - returned * 1000)
        stages["dispatch"].append((sent + lag) * 1000 - last_read)
    return stages


def bench_latency(opts: argparse.Namespace, peer: dict[str, float] | None) -> None:
    from bench.entities import BenchClock

    count = opts.latency_calls
    lags: list[float] = []
    trips: list[float] = []
    log(f"latency: {count} sequential persisted calls on an idle runner")
    with runners(1, opts.profile, "latency"):
        for i in range(20):  # warm up: connections, reply watcher, router, entity activation
            BenchClock.client(f"clock-{i % 10}").stamp.call(sent_at=time.time())
        deadline = time.monotonic() + 120
        for i in range(count):
            if time.monotonic() > deadline:
                log(f"latency: stopped after {i} calls (time bound)")
                break
            sent = time.time()
            lags.append(BenchClock.client(f"clock-{i % 10}").stamp.call(sent_at=sent))
            trips.append(time.time() - sent)
            time.sleep(0.002)  # the runner goes idle again
        log(f"latency: {count // 2} more with .send(), for the stage breakdown")
        stages = latency_stages(count // 2)
    p50, p99 = pct(lags, 50) * 1000, pct(lags, 99) * 1000
    rows = [
        ["clusterkit: send → handler start", len(lags), p50, p99, max(lags) * 1000],
        ["clusterkit: whole .call() (reply back)", len(trips), pct(trips, 50) * 1000,
         pct(trips, 99) * 1000, max(trips) * 1000],
        ["  stage: .send() (INSERT + NOTIFY committed)", len(stages["send"]),
         pct(stages["send"], 50), pct(stages["send"], 99), max(stages["send"], default=0.0)],
        ["  stage: send returned → claimed (±1 ms)", len(stages["claim"]),
         pct(stages["claim"], 50), pct(stages["claim"], 99), max(stages["claim"], default=0.0)],
        ["  stage: claimed → handler start (±1 ms)", len(stages["dispatch"]),
         pct(stages["dispatch"], 50), pct(stages["dispatch"], 99),
         max(stages["dispatch"], default=0.0)],
    ]  # fmt: skip
    if peer:
        rows.append(["procrastinate: defer → task start", int(peer["n"]), peer["p50"],
                     peer["p99"], peer["max"]])  # fmt: skip
    table("Persisted call latency on an idle runner (ms)",
          ["path", "calls", "p50", "p99", "max"], rows)  # fmt: skip
    ref = f"procrastinate p50 {peer['p50']:.1f} ms" if peer else ""
    SUMMARY.append(
        Figure(
            "persisted latency p50 (send → handler)",
            p50,
            "ms",
            ref,
            p50 / peer["p50"] if peer else float("nan"),
            "<= 2 ms",
            p50 <= 2.0,
        )
    )
    SUMMARY.append(
        Figure(
            "persisted latency p99 (send → handler)",
            p99,
            "ms",
            f"procrastinate p99 {peer['p99']:.1f} ms" if peer else "",
            p99 / peer["p99"] if peer else float("nan"),
            "<= 10 ms",
            p99 <= 10.0,
        )
    )


class RawTransport:
    """A blocking socket to a runner's transport: frames round trips without the caller loop."""

    def __init__(self, address: str) -> None:
        import socket

        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        self.corr = 0

    def round_trips(self, frame: Any, count: int) -> list[float]:
        """Seconds per round trip of ``count`` copies of ``frame``."""
        from clusterkit import frames

        out: list[float] = []
        clock = time.perf_counter
        for _ in range(count):
            self.corr += 1
            frame.corr = self.corr
            t0 = clock()
            self.sock.sendall(frames.pack(frame))
            (size,) = frames.HEADER.unpack(self.reader.read(frames.HEADER.size))
            reply = frames.decoder.decode(self.reader.read(size))
            out.append(clock() - t0)
            assert isinstance(reply, frames.Result) and reply.ok, reply
        return out

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def loop_pings(address: str, count: int) -> list[float]:
    """Ping frames through the caller's background loop and transport client (sync waits)."""
    import asyncio

    from clusterkit import frames, loop
    from clusterkit.transport import client

    async def ping() -> None:
        conn = await client._connection(address)
        corr = next(client.counter)
        future = asyncio.get_running_loop().create_future()
        conn.pending[corr] = future
        conn.writer.write(frames.pack(frames.Ping(corr=corr)))
        await future

    out: list[float] = []
    clock = time.perf_counter
    for _ in range(count):
        t0 = clock()
        loop.submit(ping()).result(5)
        out.append(clock() - t0)
    return out


def bench_volatile(opts: argparse.Namespace) -> None:
    """Volatile ``.call()`` vs Redis PING, with the transport's floors, all interleaved."""
    import msgspec
    import redis
    from django.conf import settings

    from bench.entities import BenchCounter
    from clusterkit import frames

    count, chunk = opts.volatile_calls, 250
    log(f"volatile: {count} sequential .call() to the runner process, {count} Redis PINGs,")
    log("  and the floors (Ping/Call frames on a blocking socket, Ping via the caller's loop)")
    r = redis.Redis.from_url(settings.REDIS_URL)
    clock = time.perf_counter
    lat: dict[str, list[float]] = collections.defaultdict(list)
    with runners(1, opts.profile, "volatile") as procs:
        address = procs[0].address
        client = BenchCounter.client("volatile-1")
        client.increment.call(by=1)
        raw = RawTransport(address)
        call = frames.Call(corr=0, entity_type="BenchCounter", entity_id="volatile-1", rpc="get",
                           payload=msgspec.Raw(b"{}"), headers={})  # fmt: skip

        def calls(n: int) -> list[float]:
            out = []
            for _ in range(n):
                t0 = clock()
                client.get.call()
                out.append(clock() - t0)
            return out

        def pings(n: int) -> list[float]:
            out = []
            for _ in range(n):
                t0 = clock()
                r.ping()
                out.append(clock() - t0)
            return out

        paths: dict[str, Callable[[int], list[float]]] = {
            "call": calls,
            "ping": pings,
            "raw_ping": lambda n: raw.round_trips(frames.Ping(corr=0), n),
            "raw_call": lambda n: raw.round_trips(call, n),
            "loop_ping": lambda n: loop_pings(address, n),
        }
        try:
            for run in paths.values():  # warm up every path
                run(50)
            deadline = time.monotonic() + 120
            while len(lat["call"]) < count and time.monotonic() < deadline:  # interleaved
                for name, run in paths.items():
                    lat[name].extend(run(chunk if name in ("call", "ping") else chunk // 2))
        finally:
            raw.close()
    c50, p50 = pct(lat["call"], 50) * 1e6, pct(lat["ping"], 50) * 1e6

    def row(name: str, key: str) -> list[Any]:
        q50 = pct(lat[key], 50) * 1e6
        return [name, len(lat[key]), q50, pct(lat[key], 99) * 1e6, q50 / p50]

    table(
        "Volatile call round trip across processes (µs)",
        ["path", "calls", "p50", "p99", "x Redis PING p50"],
        [
            row("clusterkit volatile .call()", "call"),
            row("redis-py PING (sync)", "ping"),
            row("  floor: Ping frame, blocking socket → runner", "raw_ping"),
            row("  floor: Call frame (entity rpc), blocking socket", "raw_call"),
            row("  floor: Ping frame via the caller's background loop", "loop_ping"),
        ],
    )
    SUMMARY.append(Figure("volatile round trip p50", c50, "µs", f"Redis PING p50 {p50:.0f} µs",
                          c50 / p50, "<= 3x PING", c50 <= 3 * p50))  # fmt: skip


def bench_memory(opts: argparse.Namespace) -> None:
    from bench.entities import BenchIdle

    count, batch = opts.entities, 2000
    log(f"memory: one persisted call to each of {count:,} entities")
    with runners(1) as procs:
        runner = procs[0]
        time.sleep(1.0)
        base = runner.memory()
        t0 = time.time()
        for start in range(0, count, batch):
            BenchIdle.send_many(
                [(f"idle-{i}", "touch", {}) for i in range(start, min(count, start + batch))]
            )
        sent = time.time()
        done = wait_replies(count, 240.0, "memory", every=0.1)
        check_all_succeeded(count)
        time.sleep(2.0)  # the last commits settle
        resident = BenchIdle.client("idle-0").resident.call()
        after = runner.memory()
    rss = after["VmRSS"] / MiB
    table(
        f"Runner memory holding {count:,} idle entities",
        ["measure", "value"],
        [
            ["RSS when ready (MiB)", base["VmRSS"] / MiB],
            [f"RSS with {count:,} entities (MiB)", rss],
            ["peak RSS (VmHWM, MiB)", after["VmHWM"] / MiB],
            ["per entity (bytes, RSS growth)", (after["VmRSS"] - base["VmRSS"]) / max(1, count)],
            ["entities resident on the runner", resident],
            ["send time (s)", sent - t0],
            ["first send → last reply (s)", done - t0],
            ["calls/s (one call per new entity)", count / (done - t0)],
        ],
    )
    SUMMARY.append(
        Figure(
            f"runner RSS, {count:,} idle entities",
            rss,
            "MiB",
            f"{base['VmRSS'] / MiB:.0f} MiB at start",
            target="< 300 MiB",
            met=rss < 300 and resident >= count,
        )
    )


# -- the peer ------------------------------------------------------------------------


def peer_worker(out: Path, drain: bool) -> subprocess.Popen[str]:
    code = "import sys; from bench.procrastinate_peer import worker_main; worker_main(sys.argv[1:])"
    args = [sys.executable, "-c", code, "--out", str(out)] + (["--drain"] if drain else [])
    return subprocess.Popen(
        args, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def bench_procrastinate(opts: argparse.Namespace) -> tuple[float, dict[str, float]]:
    """The peer's drain rate (jobs/s) and its idle defer → start latency (ms)."""
    from bench import procrastinate_peer as peer

    peer.ensure_database()
    tmp = Path(tempfile.mkdtemp(prefix="bench-procrastinate-"))
    n = opts.peer_jobs
    # Drain: a backlog of n no-op jobs, then a worker that exits once it is empty.
    peer.clean()
    log(f"procrastinate: deferring {n:,} jobs with batch_defer")
    defer_s = peer.defer_batch(n)
    log(f"procrastinate: draining {n:,} jobs with one worker")
    t0 = time.time()
    worker = peer_worker(tmp / "drain.json", drain=True)
    try:
        worker.wait(max(60.0, n / 20))
    except subprocess.TimeoutExpired:
        worker.kill()
        raise
    wall = time.time() - t0
    starts = sorted(json.loads((tmp / "drain.json").read_text())["starts"])
    drain_rate = (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    # Latency: one job at a time to an idle, listening worker.
    peer.clean()
    count = opts.peer_latency_jobs
    worker = peer_worker(tmp / "latency.json", drain=False)
    try:
        assert worker.stdout is not None
        worker.stdout.readline()  # "procrastinate worker ready"
        time.sleep(1.5)  # the worker registers and starts listening
        peer.defer_sequential(5)  # warm up
        log(f"procrastinate: {count} sequential defers to an idle worker")
        peer.defer_sequential(count)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    lags = [x * 1000 for x in json.loads((tmp / "latency.json").read_text())["lags"][5:]]
    peer.clean()
    latency = {
        "n": float(len(lags)),
        "p50": pct(lags, 50),
        "p99": pct(lags, 99),
        "max": max(lags) if lags else float("nan"),
    }
    table(
        "Procrastinate 3.10 (same PostgreSQL, one worker, concurrency 1, no-op async task)",
        ["measure", "value"],
        [
            [f"batch_defer of {n:,} jobs (jobs/s)", n / defer_s],
            ["drain rate, first → last start (jobs/s)", drain_rate],
            ["drain incl. worker start-up (jobs/s)", n / wall],
            ["defer → start p50 (ms)", latency["p50"]],
            ["defer → start p99 (ms)", latency["p99"]],
        ],
    )
    return drain_rate, latency


# -- entry point ---------------------------------------------------------------------

def bench_failover(opts: argparse.Namespace) -> None:
    """kill -9 one of two runners mid-backlog: time until its shards' calls are handled again.

    The clock stops at the first reply, committed by the survivor, to a call on a shard the
    dead runner held; with the default lease (``SHARD_LEASE_TTL`` 6 s) that is the lease
    expiry plus one renewal tick at most.
    """
    from bench.entities import BenchSlow
    from clusterkit import snowflake
    from clusterkit.conf import cluster_settings

    log("failover: 2 runners, a backlog, kill -9 of one of them")
    with runners(2) as procs:
        victim = procs[0]
        shards = {r[0] for r in sql(
            "SELECT shard_id FROM clusterkit_shardlease WHERE runner_id = %s", [victim.runner_id]
        )}
        calls = [(f"slow-{i}", "work", {"n": i}) for i in range(opts.failover_calls)]
        for start in range(0, len(calls), 500):
            BenchSlow.send_many(calls[start : start + 500])
        wait_replies(len(calls) // 10, 60, "failover warm-up")
        assert victim.proc is not None
        victim.proc.kill()
        killed = time.time()
        deadline = time.monotonic() + 60
        first: float | None = None
        while first is None and time.monotonic() < deadline:
            rows = sql(
                "SELECT min(r.id) FROM clusterkit_reply r JOIN clusterkit_message m "
                "ON m.id = r.request_id WHERE m.shard_id = ANY(%s) AND r.id >= %s",
                [sorted(shards), snowflake.lowest_id_at(int(killed * 1000))],
            )
            if rows and rows[0][0] is not None:
                first = snowflake.timestamp_ms(int(rows[0][0])) / 1000 - killed
            else:
                time.sleep(0.02)
        if first is None:
            raise TimeoutError("no call of the dead runner's shards was handled in 60 s")
        wait_replies(len(calls), 120, "failover backlog")
    ttl = float(cluster_settings.SHARD_LEASE_TTL)
    table(
        "Failover after kill -9 (s)",
        ["measure", "value"],
        [["lease TTL (SHARD_LEASE_TTL)", ttl], ["kill -9 → first redelivered call handled", first]],
    )
    SUMMARY.append(Figure("kill -9 → first redelivered call handled", first, "s",
                          reference=f"lease TTL {ttl:.0f} s", target="<= 10 s", met=first <= 10))


BENCHES = ("procrastinate", "throughput", "latency", "volatile", "memory", "failover")


def summary() -> None:
    rows = []
    for f in SUMMARY:
        verdict = "-" if f.met is None else ("ok" if f.met else "MISSED")
        rows.append([f.name, f.value, f.unit, f.reference, f.ratio, f.target, verdict])
    table(
        "Summary",
        ["figure", "value", "unit", "reference (same run)", "ratio", "target", "met"],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench core", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--only", default=",".join(BENCHES), help=f"comma-separated subset of {', '.join(BENCHES)}"
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts, no runner scaling")
    parser.add_argument(
        "--repeat", type=int, default=1, help="throughput runs per variant (median)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the runner during the 1-runner throughput runs into DIR",
    )
    opts = parser.parse_args(argv)
    chosen = [b.strip() for b in opts.only.split(",") if b.strip()]
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    scale = 0.25 if opts.quick else 1.0
    opts.calls = int(20000 * scale)
    opts.latency_calls = int(500 * scale)
    opts.volatile_calls = int(2000 * scale)
    opts.entities = int(100_000 * scale)
    opts.peer_jobs = int(2000 * scale)
    opts.peer_latency_jobs = int(200 * scale)
    opts.failover_calls = int(8000 * scale)
    setup()
    from django.db import connection

    started = time.monotonic()
    peer_rate: float | None = None
    peer_latency: dict[str, float] | None = None
    steps: dict[str, Callable[[], None]] = {
        "throughput": lambda: bench_throughput(opts, peer_rate),
        "latency": lambda: bench_latency(opts, peer_latency),
        "volatile": lambda: bench_volatile(opts),
        "memory": lambda: bench_memory(opts),
        "failover": lambda: bench_failover(opts),
    }
    if "procrastinate" in chosen:
        peer_rate, peer_latency = bench_procrastinate(opts)
        SUMMARY.append(Figure("procrastinate drain (peer)", peer_rate, "jobs/s", target="(info)"))
    for name in BENCHES[1:]:
        if name in chosen:
            steps[name]()
    summary()
    server = sql("SHOW server_version")[0][0]
    command = " ".join(["python -m bench core", *(argv or sys.argv[1:])])
    print(
        f"\n({command}; {time.monotonic() - started:.0f} s;"
        f" PostgreSQL {server} db {connection.settings_dict['NAME']}; {os.cpu_count()} CPUs;"
        f" load average {os.getloadavg()[0]:.2f} at the end)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
