"""``python -m bench streaming``: publish → receive latency across processes, SSE fan-out,
against django-eventstream in the same run.

Needs PostgreSQL (127.0.0.1:5432, user ``postgres``) and Redis (127.0.0.1:6379).
clusterkit: this process publishes (``streaming.apublish``, a persisted message) and
reads SSE over real sockets; a ``runworker`` subprocess hosts the stream entities; a
uvicorn subprocess serves ``/streams/<channel>/events/`` (``bench.settings_streaming``:
the streaming test server's routing, fan-out over channels-redis' pub/sub layer).
django-eventstream 5: a publisher subprocess (``send_event``), a uvicorn subprocess
serving its view, fan-out through its Redis pub/sub listener; once without storage
and once with ``DjangoModelStorage`` (resumable, like clusterkit's log).

- latency: one event every ``--interval`` s, each carrying its publish time; p50/p99 of
  the time until one SSE client (through the server) has it.
- fan-out: N SSE connections on one channel, ``--events`` published as fast as they
  go; deliveries/s = events delivered / time from the first publish to the last arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "ck_bench_streaming"
ENV = {
    **os.environ,
    "CLUSTERKIT_TEST_BACKEND": "postgres",
    "CLUSTERKIT_TEST_DB_NAME": DB,
    "DJANGO_SETTINGS_MODULE": "bench.settings_streaming",
    "PYTHONUNBUFFERED": "1",
}


def setup_django() -> None:
    """Django on the streaming test settings, with the bench database created and migrated."""
    os.environ.update(ENV)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB],
                   capture_output=True, check=False)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], ready: str, log: Path,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, cwd=ROOT, env={**ENV, **(env or {})}, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text(errors="replace")[-2000:])
        time.sleep(0.1)
    return proc


class Reader:
    """One SSE connection (asyncio streams); records the arrival of every event.

    It reads whole chunks and splits them into frames, so the client's own parsing
    stays cheap next to the server's work (a thousand of them share this process).
    """

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.latencies: list[float] = []
        self.last_at = 0.0  # time.time() of the last event read

    async def run(self, port: int, path: str, opened: asyncio.Event | None = None) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream"
                     "\r\n\r\n".encode())
        await writer.drain()
        rest = b""
        try:
            while chunk := await reader.read(1 << 16):
                now = time.time()
                frames = (rest + chunk).replace(b"\r\n", b"\n").split(b"\n\n")
                rest = frames.pop()
                for frame in frames:
                    self._frame(frame, now, opened)
        finally:
            writer.close()

    def _frame(self, frame: bytes, now: float, opened: asyncio.Event | None) -> None:
        for line in frame.split(b"\n"):
            if opened is not None and line.startswith((b"retry:", b"event: stream-open")):
                opened.set()
            if line.startswith(b"id: "):  # clusterkit: "id: 7"; django-eventstream: "ch:7"
                self.ids.append(int(line[4:].rsplit(b":", 1)[-1]))
                self.last_at = now
            elif line.startswith(b'data: {"t":'):
                self.latencies.append(now - json.loads(line[6:])["t"])


Publish = Callable[[str, int, float], Awaitable[None]]


async def latency(port: int, path: str, publish: Publish, count: int,
                  interval: float) -> tuple[float, float]:
    """p50/p99 (ms) from publish to one SSE client having the event."""
    channel = f"lat-{uuid.uuid4().hex[:8]}"
    reader, opened = Reader(), asyncio.Event()
    task = asyncio.ensure_future(reader.run(port, path.format(channel=channel), opened))
    await asyncio.wait_for(opened.wait(), 30)
    await asyncio.sleep(0.5)
    await publish(channel, 20, interval)  # warm up
    await asyncio.sleep(0.5)
    reader.latencies.clear()
    await publish(channel, count, interval)
    await asyncio.sleep(1)
    task.cancel()
    ms = sorted(x * 1000 for x in reader.latencies)
    if len(ms) < count:
        raise RuntimeError(f"{len(ms)} of {count} events arrived")
    return statistics.median(ms), ms[int(len(ms) * 0.99) - 1]


async def fanout(port: int, path: str, burst: Callable[[str, int], Awaitable[None]],
                 subscribers: int, events: int) -> tuple[float, bool]:
    """Deliveries/s to ``subscribers`` SSE clients of one channel, and whether every
    client got every event once, in order."""
    channel = f"fan-{uuid.uuid4().hex[:8]}"
    readers = [Reader() for _ in range(subscribers)]
    opened = [asyncio.Event() for _ in readers]
    tasks = [asyncio.ensure_future(r.run(port, path.format(channel=channel), o))
             for r, o in zip(readers, opened, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 120)
    await asyncio.sleep(1)
    started = time.time()
    await burst(channel, events)
    # Until every client has every event, or nothing arrived for 5 s (events were lost).
    while any(len(r.ids) < events for r in readers):
        await asyncio.sleep(0.05)
        if time.time() - max(started, *(r.last_at for r in readers)) > 5:
            break
    delivered = sum(len(r.ids) for r in readers)
    elapsed = max(r.last_at for r in readers) - started
    complete = all(len(r.ids) == events and r.ids == sorted(set(r.ids)) for r in readers)
    for task in tasks:
        task.cancel()
    return delivered / elapsed if elapsed > 0 else 0.0, complete


async def ck_publish(channel: str, count: int, interval: float) -> None:
    from streaming import apublish

    for _ in range(count):
        await apublish(channel, "tick", {"t": time.time()}, tenant="public")
        await asyncio.sleep(interval)


async def ck_burst(channel: str, count: int) -> None:
    from streaming.entities import Stream

    await Stream.asend_many(
        [(f"public/{channel}", "append", {"event": "tick", "data": i}) for i in range(count)]
    )


class EventstreamPublisher:
    """The django-eventstream publisher subprocess (:mod:`bench.eventstream_publish`)."""

    def __init__(self, log: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.eventstream_publish"], cwd=ROOT, env={**ENV, **env},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("wb"), text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(log.read_text(errors="replace")[-2000:])

    async def command(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = await asyncio.get_running_loop().run_in_executor(None, self.proc.stdout.readline)
        if answer.strip() != "done":
            raise RuntimeError(f"eventstream publisher answered {answer!r}")

    async def publish(self, channel: str, count: int, interval: float) -> None:
        await self.command(f"latency {channel} {count} {interval}")

    async def burst(self, channel: str, count: int) -> None:
        await self.command(f"burst {channel} {count}")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(20)


def wait_owner(log: Path, timeout: float = 30.0) -> None:
    """Wait until the runner that wrote ``log`` holds every shard (an earlier run's
    leases may still be live for up to a lease lifetime)."""
    import re

    from clusterkit.models import ShardLease

    match = re.search(r"runner (\d+) listening", log.read_text(errors="replace"))
    assert match is not None
    deadline = time.monotonic() + timeout
    while ShardLease.objects.exclude(runner_id=int(match[1])).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the benchmark's runner did not get every shard")
        time.sleep(0.2)


def run_eventstream(opts: argparse.Namespace, logs: Path, stored: str,
                    subscribers: int) -> tuple[float, float, float, bool, int]:
    """Latency and fan-out through django-eventstream (``stored``: with its model storage)."""
    port = free_port()
    env = {"DJANGO_SETTINGS_MODULE": "bench.eventstream_settings", "BENCH_ES_STORAGE": stored}
    web = start([sys.executable, "-m", "uvicorn", "bench.eventstream_urls:application_factory",
                 "--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level",
                 "info"], "Uvicorn running", logs / f"es-web-{stored}.log", env)
    publisher = EventstreamPublisher(logs / f"es-publisher-{stored}.log", env)
    path = "/es/{channel}/"
    try:
        p50, p99 = asyncio.run(latency(port, path, publisher.publish, opts.samples,
                                       opts.interval))
        rate, complete = asyncio.run(fanout(port, path, publisher.burst, subscribers, opts.events))
    finally:
        publisher.close()
        web.terminate()
        web.wait(20)
    return p50, p99, rate, complete, subscribers


def setup_eventstream() -> None:
    """The peer's database, created and migrated (its own settings, in a subprocess)."""
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", "es_bench_streaming"],
                   capture_output=True, check=False)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0",
                    "--settings=bench.eventstream_settings"], cwd=ROOT, check=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--stored-subscribers", type=int, default=80,
                        help="subscribers of the stored django-eventstream run (one DB "
                        "connection each)")
    parser.add_argument("--only", default="clusterkit,django-eventstream")
    opts = parser.parse_args(argv)
    chosen = {x.strip() for x in opts.only.split(",")}
    setup_django()
    logs = Path("/tmp") / f"bench-streaming-{os.getpid()}"
    logs.mkdir(exist_ok=True)
    results: dict[str, tuple[float, float, float, bool, int]] = {}
    if "clusterkit" in chosen:
        port = free_port()
        procs = [
            start([sys.executable, "manage.py", "runworker", "--settings=bench.settings_streaming"],
                  "listening on", logs / "runner.log"),
            start([sys.executable, "-m", "uvicorn", "tests.streaming.asgi:application",
                   "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"],
                  "Uvicorn running", logs / "web.log"),
        ]
        path = "/streams/{channel}/events/"
        try:
            wait_owner(logs / "runner.log")
            p50, p99 = asyncio.run(latency(port, path, ck_publish, opts.samples, opts.interval))
            for n in sorted({opts.subscribers, opts.stored_subscribers}, reverse=True):
                rate, complete = asyncio.run(fanout(port, path, ck_burst, n, opts.events))
                name = "clusterkit" if n == opts.subscribers else f"clusterkit, N={n}"
                results[name] = (p50, p99, rate, complete, n)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(20)
    if "django-eventstream" in chosen:
        setup_eventstream()
        # Stored, it holds a connection per subscriber: stay under max_connections.
        for name, stored, subscribers in (
            ("django-eventstream", "0", opts.subscribers),
            ("django-eventstream, stored", "1", min(opts.subscribers, opts.stored_subscribers)),
        ):
            results[name] = run_eventstream(opts, logs, stored, subscribers)
    print(f"\nStreaming: publish → SSE receive across processes ({opts.samples} events, one"
          f" every {opts.interval * 1000:.0f} ms); fan-out to N SSE subscribers of one channel"
          f" ({opts.events} events as fast as they go)")
    print(f"  {'system':<28} {'p50 ms':>7} {'p99 ms':>7} {'N':>5} {'deliveries/s':>13}  complete")
    for name, (p50, p99, rate, complete, n) in results.items():
        print(f"  {name:<28} {p50:>7.1f} {p99:>7.1f} {n:>5} {rate:>13,.0f}  "
              f"{'gap-free' if complete else 'INCOMPLETE'}")
    ck = results.get("clusterkit")
    same_n = {r[4]: r for name, r in results.items() if name.startswith("clusterkit")}
    for name, peer in results.items():
        if ck is None or name.startswith("clusterkit") or peer[4] not in same_n:
            continue
        if not peer[3] or not peer[2]:
            print(f"  clusterkit ÷ {name}: latency p50 {peer[0] / ck[0]:.2f}x as fast; no"
                  f" fan-out ratio: it lost events at N={peer[4]} (clusterkit: gap-free)")
        else:
            print(f"  clusterkit ÷ {name}: latency p50 {peer[0] / ck[0]:.2f}x as fast,"
                  f" fan-out at N={peer[4]} {same_n[peer[4]][2] / peer[2]:.1f}x (target ≥ 10x)")
    if ck is not None:
        print(f"  targets: p50 ≤ 5 ms {'ok' if ck[0] <= 5 else 'MISSED'},"
              f" p99 ≤ 50 ms {'ok' if ck[1] <= 50 else 'MISSED'}")
    print(f"  (python -m bench streaming {' '.join(argv)}; {os.cpu_count()} CPUs;"
          f" load average {os.getloadavg()[0]:.2f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
