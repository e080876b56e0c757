"""Fault injection on a real cluster: kill -9, SIGSTOP, a cut database link, a PostgreSQL
restart, a rolling SIGTERM restart, and singletons/cron through failovers.

Every scenario runs real ``runworker`` subprocesses on the test database and checks the
shared invariants of :mod:`tests.cluster.invariants`. Measured failover times are printed
(``pytest -s``) and recorded as test properties (``--junitxml``).

The PostgreSQL restart stops the server every other test on this machine uses: it only
runs with ``CLUSTERKIT_TEST_PG_RESTART=1``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections

from clusterkit.models import Runner
from tests.testapp.entities import Tracked
from tests.testapp.models import Beat, TrackedRun

from . import invariants
from .harness import RunnerProcess, wait_until
from .invariants import SHARDS, retry_db
from .tcp_proxy import TcpProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.subprocess]

TTL = float(settings.CLUSTERKIT["SHARD_LEASE_TTL"])
RENEW = float(settings.CLUSTERKIT["SHARD_LEASE_RENEW_INTERVAL"])
KILL_FAILOVER_LIMIT = TTL + 4 * RENEW  # lease expiry plus a few renew intervals: 5 s
TERM_FAILOVER_LIMIT = 1.5  # released on SIGTERM, taken at once on the NOTIFY
Spawn = Callable[..., RunnerProcess]
Record = Callable[[str, object], None]


@pytest.fixture
def postgres_only() -> None:
    if settings.BACKEND != "postgres":
        pytest.skip("needs PostgreSQL (several processes, LISTEN/NOTIFY, a TCP link)")


@pytest.fixture
def cluster(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., list[RunnerProcess]]]:
    """Start runners in parallel: ``cluster(n, name, **env)``; all stopped after the test."""
    started: list[RunnerProcess] = []

    def start(count: int, name: str = "runner", **env: str) -> list[RunnerProcess]:
        procs = [RunnerProcess(tmp_path, f"{name}-{len(started) + i}", env or None)
                 for i in range(count)]
        started.extend(procs)
        threads = [threading.Thread(target=p.start, args=("-v", "2")) for p in procs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        for proc in procs:
            assert proc.proc is not None and proc.proc.poll() is None, proc.log()[-3000:]
            wait_until(lambda p=proc: "listening on" in p.log(), 30, f"{proc.name} to start")
        return procs

    yield start
    for proc in started:
        proc.stop()


def machine_id(proc: RunnerProcess) -> int:
    """The runner id (``Runner.machine_id``) of ``proc`` now."""
    return retry_db(lambda: Runner.objects.get(pid=proc.pid).machine_id)


def live_ids(procs: list[RunnerProcess]) -> Callable[[], list[int]]:
    """Runner ids of the processes of ``procs`` still running, looked up on each call."""

    def ids() -> list[int]:
        pids = [p.pid for p in procs if p.proc is not None and p.proc.poll() is None]
        return list(Runner.objects.filter(pid__in=pids).values_list("machine_id", flat=True))

    return ids


def wait_balanced(procs: list[RunnerProcess], timeout: float = 20) -> None:
    """Until every runner of ``procs`` holds at least half its fair share of the shards."""
    share = SHARDS // len(procs) // 2

    def balanced() -> bool:
        return all(invariants.owned_by([machine_id(p)]) >= share for p in procs)

    wait_until(balanced, timeout, "the shards to spread over the runners", step=0.1)


def send_tracked(
    entities: int, per_entity: int, *, batch: int = 500, work: float = 0.0, prefix: str = "t",
    pause: float = 0.0,
) -> list[int]:
    """Send ``per_entity`` calls (seq 0…) to each of ``entities`` entities, in batches."""
    calls = [
        (f"{prefix}-{e}", "handle", {"seq": seq, "work": work} if work else {"seq": seq})
        for seq in range(per_entity)
        for e in range(entities)
    ]
    ids: list[int] = []
    for start in range(0, len(calls), batch):
        ids.extend(Tracked.send_many(calls[start : start + batch]))
        if pause:
            time.sleep(pause)
    return ids


class Sender(threading.Thread):
    """Sends tracked calls in the background (its own DB connection), ``pause`` apart."""

    def __init__(self, entities: int, per_entity: int, batch: int, pause: float,
                 prefix: str) -> None:
        super().__init__(daemon=True)
        self.args_ = (entities, per_entity, batch, pause, prefix)
        self.ids: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        entities, per_entity, batch, pause, prefix = self.args_
        try:
            self.ids = send_tracked(entities, per_entity, batch=batch, pause=pause,
                                    prefix=prefix)
        except BaseException as exc:  # reported by result()
            self.error = exc
        finally:
            connections.close_all()

    def result(self, timeout: float = 120) -> list[int]:
        self.join(timeout)
        assert not self.is_alive(), "the sender did not finish"
        if self.error is not None:
            raise self.error
        return self.ids


class OwnershipMonitor(threading.Thread):
    """Samples who holds the shards every 20 ms: ``(time, {runner_id: shards})``."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        sql = (
            "SELECT runner_id, count(*) FROM clusterkit_shardlease "
            "WHERE runner_id IS NOT NULL AND expires_at > now() GROUP BY runner_id"
        )
        try:
            while not self.halt.is_set():
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(sql)
                        owners = dict(cursor.fetchall())
                    self.samples.append((time.monotonic(), owners))
                except Exception:
                    connection.close()
                    self.samples.append((time.monotonic(), {-1: 0}))  # db unreachable
                    time.sleep(0.1)
                self.halt.wait(0.02)
        finally:
            connection.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(10)

    def handover(self, after: float, gone: int) -> tuple[float, float]:
        """After ``after``: (seconds until ``gone`` held nothing, then until all were held).

        The caller saw every shard owned a moment ago; the samples of that moment may
        still be on their way, so they are awaited for a few seconds.
        """
        deadline = time.monotonic() + 5
        while True:
            released = owned = None
            for t, owners in list(self.samples):
                if t < after:
                    continue
                if released is None and owners.get(gone, 0) == 0 and -1 not in owners:
                    released = t
                if released is not None and sum(owners.values()) == SHARDS:
                    owned = t
                    break
            if released is not None and owned is not None:
                return released - after, owned - released
            assert time.monotonic() < deadline, "no complete hand-over sampled"
            time.sleep(0.05)


def report(record_property: Record, name: str, value: float | str) -> None:
    text = f"{value:.2f}s" if isinstance(value, float) else value
    print(f"\n[faults] {name}: {text}")
    record_property(name, text)


def wait_replies(ids: list[int], timeout: float, what: str) -> None:
    wait_until(lambda: invariants.replies_done(ids) == len(ids), timeout, what, step=0.2)


# -- 1. kill -9 and a join under 10,000 calls -------------------------------------------


def test_kill_9_and_join_under_10000_calls(
    postgres_only: None, cluster: Callable[..., list[RunnerProcess]], record_property: Record
) -> None:
    procs = cluster(3, "s1")
    wait_balanced(procs)
    sender = Sender(1000, 10, 500, 0.05, "k")
    sender.start()
    # Kill one runner once work is flowing.
    wait_until(lambda: _handled("k-") >= 1500, 60, "progress")
    victim = procs[0]
    victim_id = machine_id(victim)
    held_before = invariants.owned_by([victim_id])
    killed_at = time.monotonic()
    victim.kill()
    joined: list[RunnerProcess] = []  # one joins while the victim's leases run out
    joining = threading.Thread(target=lambda: joined.extend(cluster(1, "s1-join")))
    joining.start()
    survivors = procs[1:]
    failover = invariants.wait_all_owned_by(
        lambda: live_ids([*survivors, *joined])(), KILL_FAILOVER_LIMIT + 5
    )
    joining.join(60)
    joiner = joined[0]
    report(record_property, "kill-9 failover (shards re-owned after kill)", failover)
    assert held_before > 0
    assert failover <= KILL_FAILOVER_LIMIT, f"kill -9 failover took {failover:.2f}s"
    ids = sender.result()
    assert len(ids) == 10_000
    wait_replies(ids, 120, "all 10,000 replies")
    report(record_property, "scenario 1 all replied after kill", time.monotonic() - killed_at)
    result = invariants.check_tracked(ids)
    report(record_property, "scenario 1", str(result))
    assert victim.pid in result.pids
    wait_until(lambda: invariants.owned_by([machine_id(joiner)]) > 0, 15, "the joiner's shards")


def _handled(prefix: str) -> int:
    return retry_db(lambda: TrackedRun.objects.filter(entity_id__startswith=prefix).count())


# -- 2. SIGSTOP past the lease: the zombie commits nothing late -------------------------


def test_sigstop_zombie_is_fenced(
    postgres_only: None, cluster: Callable[..., list[RunnerProcess]], record_property: Record
) -> None:
    zombie, other = cluster(2, "s2")
    wait_balanced([zombie, other])
    ids = send_tracked(200, 8, work=0.03, prefix="z")
    wait_until(lambda: _handled("z-") >= 150, 60, "progress")
    zombie_id = machine_id(zombie)
    assert invariants.owned_by([zombie_id]) > 0
    paused_at = time.time()
    zombie.signal(signal.SIGSTOP)
    try:
        taken = invariants.wait_all_owned_by(lambda: [machine_id(other)], TTL + 5)
        report(record_property, "SIGSTOP: shards taken from the paused runner after", taken)
        assert taken <= KILL_FAILOVER_LIMIT
        time.sleep(max(0.0, paused_at + 2 * TTL - time.time()))  # paused ~6 s
    finally:
        zombie.signal(signal.SIGCONT)
    resumed_at = time.time()
    wait_replies(ids, 90, "all replies")
    result = invariants.check_tracked(ids)
    report(record_property, "scenario 2", str(result))
    # Executions of the zombie that straddled the pause were never committed.
    payloads = invariants.check_replies(ids)
    late = [
        p for p in payloads.values()
        if f'"pid":{zombie.pid}' in p.replace(" ", "")
        and paused_at - 1 < float(p.split('"started":')[1].rstrip("}")) < resumed_at
        and TrackedRun.objects.filter(pid=zombie.pid, started=float(
            p.split('"started":')[1].rstrip("}")), ended__gt=resumed_at).exists()
    ]
    assert not late, f"the zombie committed {len(late)} results started before its pause"
    assert zombie.pid in result.pids, "the zombie handled nothing: the test proved nothing"
    wait_until(lambda: "results fenced" in zombie.log() or "lost" in zombie.log(), 10,
               "the zombie to notice it lost its shards")
    print(_lines(zombie.log(), ("fenced", "lost", "acquired", "expire")))
    wait_until(lambda: invariants.owned_by([machine_id(zombie)]) > 0, 15, "the zombie to rejoin")


def _lines(log: str, words: tuple[str, ...]) -> str:
    return "\n".join(line for line in log.splitlines() if any(w in line for w in words))


# -- 3. a runner's database link cut by a TCP proxy ---------------------------------------


def test_cut_database_link(
    postgres_only: None, cluster: Callable[..., list[RunnerProcess]], record_property: Record
) -> None:
    db = settings.DATABASES["default"]
    proxy = TcpProxy(str(db["HOST"] or "127.0.0.1"), int(db["PORT"] or 5432)).start()
    try:
        direct = cluster(2, "s3")
        cut = cluster(1, "s3-proxied", PGHOST="127.0.0.1", PGPORT=str(proxy.port))[0]
        wait_balanced([*direct, cut])
        assert proxy.open_connections > 0
        ids = send_tracked(150, 10, work=0.01, prefix="c")
        wait_until(lambda: _handled("c-") >= 200, 60, "progress")
        cut_at = time.monotonic()
        proxy.cut()
        taken = invariants.wait_all_owned_by(live_ids(direct), TTL + 5)
        report(record_property, "cut link: shards re-owned by the others after", taken)
        assert taken <= KILL_FAILOVER_LIMIT
        wait_until(lambda: "dropping all shards" in cut.log(), 10, "the cut runner to drop")
        more = send_tracked(150, 2, prefix="c2")  # served by the others meanwhile
        wait_replies(more, 60, "replies while cut")
        time.sleep(max(0.0, cut_at + 2 * TTL - time.monotonic()))
        proxy.restore()
        restored_at = time.monotonic()
        wait_until(lambda: invariants.owned_by([machine_id(cut)]) > 0, 20, "the cut runner back")
        report(record_property, "cut link: rejoined after restore", time.monotonic() - restored_at)
        assert cut.proc is not None and cut.proc.poll() is None
        wait_replies(ids, 90, "all replies")
        result = invariants.check_tracked(ids + more)
        report(record_property, "scenario 3", str(result))
        print(_lines(cut.log(), ("fenced", "lost", "acquired", "expire", "unregistered")))
        # It serves again: new calls to its shards are answered.
        after = send_tracked(150, 1, prefix="c3")
        wait_replies(after, 60, "replies after restore")
        assert TrackedRun.objects.filter(entity_id__startswith="c3-", pid=cut.pid).exists()
    finally:
        proxy.close()


# -- 4. PostgreSQL restarted under load ---------------------------------------------------


def _pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def _pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False).returncode == 0


@pytest.mark.skipif(os.environ.get("CLUSTERKIT_TEST_PG_RESTART") != "1",
                    reason="restarts the shared PostgreSQL: set CLUSTERKIT_TEST_PG_RESTART=1")
def test_postgres_restart_under_load(
    postgres_only: None, cluster: Callable[..., list[RunnerProcess]], record_property: Record
) -> None:
    procs = cluster(2, "s4")
    wait_balanced(procs)
    ids = send_tracked(200, 10, work=0.005, prefix="p")
    wait_until(lambda: _handled("p-") >= 300, 60, "progress")
    version = _pg_version()
    started = time.monotonic()
    try:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", "-m", "fast", version, "main",
             "restart"], check=True, timeout=60,
        )
    finally:
        deadline = time.monotonic() + 60
        while not _pg_ready() and time.monotonic() < deadline:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main",
                            "start"], check=False, timeout=60)
            time.sleep(1)
    report(record_property, "PostgreSQL restart took", time.monotonic() - started)
    connection.close()
    more = retry_db(lambda: send_tracked(200, 2, prefix="p2"))
    wait_replies(ids + more, 90, "all replies after the restart")
    report(record_property, "PostgreSQL restart: all replied after", time.monotonic() - started)
    assert all(p.proc is not None and p.proc.poll() is None for p in procs)
    invariants.wait_all_owned_by(live_ids(procs), 15)
    result = invariants.check_tracked(ids + more)
    report(record_property, "scenario 4", str(result))


# -- 5. rolling restart with SIGTERM under load -------------------------------------------


@pytest.mark.xfail(
    strict=False,
    reason="known race, not yet fixed: a draining runner's claim can run on a snapshot "
    "taken before the takeover committed, so it read-leases an earlier message of an "
    "entity after the new owner reset the read leases; the new owner then runs later "
    "messages of that entity first (the claim's join does not lock the lease rows)",
)
def test_rolling_sigterm_restart(
    postgres_only: None, cluster: Callable[..., list[RunnerProcess]], record_property: Record
) -> None:
    old = cluster(3, "s5-old")
    invariants.wait_all_owned_by(live_ids(old), 15)
    sender = Sender(300, 12, 300, 0.4, "r")
    sender.start()
    monitor = OwnershipMonitor()
    monitor.start()
    live = list(old)
    figures: list[tuple[float, float, float]] = []
    try:
        for i, proc in enumerate(old):
            new = cluster(1, f"s5-new{i}")[0]
            live.append(new)
            invariants.wait_all_owned_by(live_ids(live), 15)
            gone = machine_id(proc)
            term_at = time.monotonic()
            assert proc.terminate(30) == 0
            exited = time.monotonic() - term_at
            live.remove(proc)
            invariants.wait_all_owned_by(live_ids(live), 10)
            released, handover = monitor.handover(term_at, gone)
            figures.append((exited, released, handover))
            report(record_property, f"SIGTERM {i}: exit / leases released / re-owned in",
                   f"{exited:.2f}s / {released:.2f}s / {handover:.2f}s")
    finally:
        monitor.stop()
    ids = sender.result()
    wait_replies(ids, 90, "all replies")
    result = invariants.check_tracked(ids)
    report(record_property, "scenario 5", str(result))
    assert max(h for _, _, h in figures) <= TERM_FAILOVER_LIMIT, figures


# -- 6. singleton and cron through two failovers ------------------------------------------


def test_singleton_and_cron_through_failovers(
    postgres_only: None, cluster: Callable[..., list[RunnerProcess]], record_property: Record
) -> None:
    env = {"CLUSTERKIT_TEST_SCHEDULES": "1", "CLUSTERKIT_TEST_SPANS": "1"}
    procs = cluster(3, "s6", **env)
    by_pid = {p.pid: p for p in procs}

    def beat_pid(after: float) -> int | None:
        row = Beat.objects.filter(name="singleton", at__gt=after).order_by("-at").first()
        return None if row is None else row.pid

    wait_until(lambda: Beat.objects.filter(name="cron").count() >= 2, 20, "cron runs")
    holder = beat_pid(0)
    assert holder is not None
    # Failover 1: kill -9 the singleton's runner; failover 2: SIGTERM the next one.
    for how in ("kill -9", "SIGTERM"):
        proc = by_pid[holder]
        at = time.time()
        if how == "kill -9":
            proc.kill()
        else:
            assert proc.terminate(30) == 0
        wait_until(lambda at=at, old=holder: beat_pid(at) not in (None, old), 20,
                   f"beats after {how}")
        first = Beat.objects.filter(name="singleton", at__gt=at).order_by("at").first()
        assert first is not None
        report(record_property, f"singleton back after {how}", first.at - at)
        holder = first.pid
    time.sleep(2.5)  # let the cron run past the second failover
    gaps = invariants.check_spans()
    instants = invariants.check_cron()
    segments = invariants.check_singleton_beats(max_gap=KILL_FAILOVER_LIMIT + 1)
    report(record_property, "scenario 6", f"{len(segments)} singleton holders, "
           f"{len(instants)} cron instants once each, span hand-over gaps "
           f"{[round(g, 3) for g in gaps]}")
    assert len({pid for pid, _, _ in segments}) >= 3
