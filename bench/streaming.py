"""``python -m bench.streaming``: publish → receive latency across processes, SSE fan-out.

Needs PostgreSQL (127.0.0.1:5432, user ``postgres``) and Redis (127.0.0.1:6379 db 15).
Processes: this one publishes (``streaming.publish``, a persisted message) and reads
SSE over real sockets; a ``runworker`` subprocess hosts the stream entities; a uvicorn
subprocess serves ``/streams/<channel>/events/`` (the ``tests.streaming`` ASGI app).

- latency: one event every ``--interval`` s, each carrying its publish time; p50/p99 of
  the time until one SSE client (through the server) has it.
- fan-out: ``--subscribers`` SSE connections on one channel, ``--events`` published as
  fast as possible; deliveries/s = subscribers x events / time until the last arrives.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "ck_bench_streaming"
ENV = {
    **os.environ,
    "CLUSTERKIT_TEST_BACKEND": "postgres",
    "CLUSTERKIT_TEST_DB_NAME": DB,
    "DJANGO_SETTINGS_MODULE": "tests.streaming.settings",
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


def start(args: list[str], ready: str, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text(errors="replace")[-2000:])
        time.sleep(0.1)
    return proc


class Reader:
    """One SSE connection (asyncio streams); records the arrival of every event."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.latencies: list[float] = []

    async def run(self, port: int, path: str, opened: asyncio.Event | None = None) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream"
                     "\r\n\r\n".encode())
        await writer.drain()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                if opened is not None and line.startswith(b"retry:"):
                    opened.set()
                if line.startswith(b"id: "):
                    self.ids.append(int(line[4:]))
                elif line.startswith(b'data: {"t":'):
                    self.latencies.append(time.time() - json.loads(line[6:])["t"])
        finally:
            writer.close()


async def latency(port: int, count: int, interval: float) -> tuple[float, float]:
    from streaming import apublish

    channel = f"lat-{uuid.uuid4().hex[:8]}"
    reader, opened = Reader(), asyncio.Event()
    task = asyncio.ensure_future(reader.run(port, f"/streams/{channel}/events/", opened))
    await opened.wait()
    await asyncio.sleep(0.5)
    for _ in range(20):  # warm up
        await apublish(channel, "tick", {"t": time.time()}, tenant="public")
        await asyncio.sleep(interval)
    await asyncio.sleep(0.5)
    reader.latencies.clear()
    for _ in range(count):
        await apublish(channel, "tick", {"t": time.time()}, tenant="public")
        await asyncio.sleep(interval)
    await asyncio.sleep(1)
    task.cancel()
    ms = sorted(x * 1000 for x in reader.latencies)
    return statistics.median(ms), ms[int(len(ms) * 0.99) - 1]


async def fanout(port: int, subscribers: int, events: int) -> tuple[float, bool]:
    from streaming.entities import Stream

    channel = f"fan-{uuid.uuid4().hex[:8]}"
    readers = [Reader() for _ in range(subscribers)]
    opened = [asyncio.Event() for _ in readers]
    tasks = [asyncio.ensure_future(r.run(port, f"/streams/{channel}/events/", o))
             for r, o in zip(readers, opened, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 120)
    await asyncio.sleep(1)
    started = time.monotonic()
    await Stream.asend_many(
        [(f"public/{channel}", "append", {"event": "tick", "data": i}) for i in range(events)]
    )
    deadline = started + 300
    while any(len(r.ids) < events for r in readers) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    complete = all(r.ids == list(range(1, events + 1)) for r in readers)
    for task in tasks:
        task.cancel()
    return subscribers * events / elapsed, complete


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    opts = parser.parse_args(argv)
    setup_django()
    logs = Path("/tmp") / f"bench-streaming-{os.getpid()}"
    logs.mkdir(exist_ok=True)
    port = free_port()
    procs = [
        start([sys.executable, "manage.py", "runworker", "--settings=tests.streaming.settings"],
              "listening on", logs / "runner.log"),
        start([sys.executable, "-m", "uvicorn", "tests.streaming.asgi:application",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"],
              "Uvicorn running", logs / "web.log"),
    ]
    try:
        p50, p99 = asyncio.run(latency(port, opts.samples, opts.interval))
        print(f"publish → SSE receive latency ({opts.samples} events, 3 processes): "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        rate, complete = asyncio.run(fanout(port, opts.subscribers, opts.events))
        print(f"fan-out: {opts.subscribers} SSE subscribers x {opts.events} events: "
              f"{rate:,.0f} deliveries/s, {'gap-free' if complete else 'INCOMPLETE'}")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
