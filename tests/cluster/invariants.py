"""Checks shared by the fault-injection tests: what must hold whatever failed meanwhile.

- every sent call has exactly one committed reply, and its message is processed;
- per entity, the committed executions ran in send order, each call once, and never at
  the same time as an execution of the same entity in another process, unless one of
  the two was not committed (its result was fenced or abandoned, and redelivered);
- calls sent with a primary key ran (committed) once per distinct key;
- every cron instant ran once, singletons never overlapped across processes.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import itertools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from django.db import DatabaseError, connection

from clusterkit.models import Message, Reply, ShardLease
from tests.testapp.models import Beat, SingletonSpan, TrackedRun

T = TypeVar("T")
SHARDS = 300


def retry_db(fn: Callable[[], T], timeout: float = 60.0) -> T:
    """``fn()``, retried on a fresh connection while the database is unreachable."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except DatabaseError:
            connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@dataclasses.dataclass
class Run:
    entity_id: str
    seq: int
    key: str
    pid: int
    started: float
    ended: float
    out_of_order: bool
    committed: bool = False


@dataclasses.dataclass
class Report:
    """What the checks found (printed by the tests)."""

    calls: int = 0
    runs: int = 0
    uncommitted_runs: int = 0
    overlaps_allowed: int = 0
    pids: set[int] = dataclasses.field(default_factory=set)

    def __str__(self) -> str:
        return (
            f"{self.calls} calls, {self.runs} executions ({self.uncommitted_runs} not committed,"
            f" {self.overlaps_allowed} overlapping a fenced one) on pids {sorted(self.pids)}"
        )


def replies_done(ids: Sequence[int]) -> int:
    """How many of ``ids`` have their reply (for progress waits)."""
    return retry_db(lambda: Reply.objects.filter(request_id__in=ids, kind=0).count())


def check_replies(ids: Sequence[int]) -> dict[int, str]:
    """Every id has exactly one exit reply and is processed; returns ``{id: payload}``."""
    assert len(set(ids)) == len(ids), "send returned duplicate ids"
    rows = list(Reply.objects.filter(request_id__in=ids).values_list("request_id", "kind",
                                                                     "status", "payload"))
    per_request = collections.Counter(r for r, kind, _, _ in rows if kind == 0)
    missing = set(ids) - set(per_request)
    doubled = {r: n for r, n in per_request.items() if n != 1}
    assert not missing, f"{len(missing)} calls have no reply (e.g. {sorted(missing)[:5]})"
    assert not doubled, f"calls with several replies: {list(doubled.items())[:5]}"
    failed = [(r, p) for r, kind, status, p in rows if kind == 0 and status != 0]
    assert not failed, f"{len(failed)} calls failed, e.g. {failed[:3]}"
    assert not Message.objects.filter(id__in=ids, processed=False).exists()
    return {r: p for r, kind, _, p in rows if kind == 0}


def check_tracked(
    ids: Sequence[int], expected: dict[str, Iterable[int]] | None = None
) -> Report:
    """All the invariants of the ``Tracked`` calls ``ids`` (see the module docstring).

    ``expected`` is ``{entity_id: seqs sent}``; by default, read from the messages.
    """
    payloads = check_replies(ids)
    messages = list(Message.objects.filter(id__in=ids).values_list("id", "entity_id", "payload"))
    if expected is None:
        sent: dict[str, list[int]] = collections.defaultdict(list)
        for _, entity_id, payload in messages:
            sent[entity_id].append(int(json.loads(payload)["seq"]))
        expected = sent
    committed_by: dict[tuple[str, int], tuple[int, float]] = {}
    for message_id, entity_id, payload in messages:
        seq = int(json.loads(payload)["seq"])
        reply = json.loads(payloads[message_id])
        committed_by[(entity_id, seq)] = (int(reply["pid"]), float(reply["started"]))

    entities = set(expected)
    runs: dict[str, list[Run]] = collections.defaultdict(list)
    for row in TrackedRun.objects.filter(entity_id__in=entities).values_list(
        "entity_id", "seq", "key", "pid", "started", "ended", "out_of_order"
    ):
        run = Run(*row)
        run.committed = committed_by.get((run.entity_id, run.seq)) == (run.pid, run.started)
        runs[run.entity_id].append(run)

    report = Report(calls=len(ids))
    for entity_id, seqs in expected.items():
        mine = sorted(runs[entity_id], key=lambda r: r.started)
        report.runs += len(mine)
        report.pids.update(r.pid for r in mine)
        done = [r for r in mine if r.committed]
        report.uncommitted_runs += len(mine) - len(done)
        wanted = sorted(seqs)
        # The committed executions are the calls, once each, in send order.
        assert [r.seq for r in done] == wanted, (
            f"{entity_id}: committed executions ran seqs {[r.seq for r in done]},"
            f" sent {wanted}; executions (seq, pid, started, ended, committed): "
            f"{[(r.seq, r.pid, round(r.started, 3), round(r.ended, 3), r.committed) for r in mine]}"
        )
        bad_order = [r for r in mine if r.out_of_order and r.committed]
        assert not bad_order, f"{entity_id}: out of order in one instance: {bad_order[:3]}"
        # No two processes ran the entity at once, except for a result that did not count.
        for i, run in enumerate(mine):
            for other in mine[i + 1 :]:
                if other.started >= run.ended:
                    break
                if other.pid == run.pid:
                    continue
                assert not (run.committed and other.committed), (
                    f"{entity_id}: committed executions overlap on two processes: "
                    f"{run} and {other}"
                )
                report.overlaps_allowed += 1
    return report


def check_keyed(entity_id: str, keys: Sequence[str], ids: Sequence[int]) -> None:
    """Calls sent with primary keys ``keys`` (with repeats) counted once per distinct key."""
    distinct = set(keys)
    assert len(set(ids)) == len(distinct), "a repeated primary key got a new message"
    assert Message.objects.filter(entity_id=entity_id).count() == len(distinct)
    check_replies(sorted(set(ids)))
    report = check_tracked(sorted(set(ids)))
    assert report.calls == len(distinct)
    committed = collections.Counter(
        key for key in TrackedRun.objects.filter(entity_id=entity_id).values_list("key", flat=True)
    )
    assert set(committed) == distinct


def check_cron(name: str = "cron", period: float = 2.0) -> list[str]:
    """Each cron instant ran exactly once, and none was skipped between the first and last."""
    instants = list(Beat.objects.filter(name=name).values_list("instant", flat=True))
    counts = collections.Counter(instants)
    doubled = {i: n for i, n in counts.items() if n > 1}
    assert not doubled, f"cron instants that ran more than once: {doubled}"
    moments = sorted(dt.datetime.fromisoformat(i) for i in counts)
    gaps = [
        (a.isoformat(), b.isoformat())
        for a, b in itertools.pairwise(moments)
        if (b - a).total_seconds() > period + 0.01
    ]
    assert not gaps, f"cron instants skipped between {gaps}"
    return sorted(counts)


def check_singleton_beats(max_gap: float) -> list[tuple[int, float, float]]:
    """``Beat(name="singleton")`` rows: one process at a time; returns ``(pid, first, last)``.

    Segments of consecutive beats from one pid must not interleave with another pid's.
    """
    beats = list(Beat.objects.filter(name="singleton").order_by("at").values_list("pid", "at"))
    segments: list[tuple[int, float, float]] = []
    for pid, at in beats:
        if segments and segments[-1][0] == pid:
            segments[-1] = (pid, segments[-1][1], at)
        else:
            segments.append((pid, at, at))
    # While a pid beats continuously (beats < 0.35 s apart), no other pid may beat.
    by_pid: dict[int, list[float]] = collections.defaultdict(list)
    for pid, at in beats:
        by_pid[pid].append(at)
    for pid, times in by_pid.items():
        for a, b in itertools.pairwise(times):
            if b - a < 0.35:
                others = [(p, t) for p, t in beats if p != pid and a < t < b]
                assert not others, f"pid {pid} beat at {a:.3f} and {b:.3f}, and {others}"
    for (_, _, last), (_, first, _) in itertools.pairwise(segments):
        assert first - last < max_gap, f"singleton gap of {first - last:.2f}s > {max_gap}s"
    return segments


def check_spans() -> list[float]:
    """``test-span`` runs never overlap across pids; returns the hand-over gaps (seconds)."""
    spans = list(SingletonSpan.objects.order_by("started").values_list(
        "pid", "started", "last_seen", "ended"))
    gaps: list[float] = []
    for (pid, _, seen, ended), (pid2, started2, _, _) in itertools.pairwise(spans):
        end = ended if ended is not None else seen
        assert pid != pid2 or started2 >= end, f"a pid ran the singleton twice at once: {spans}"
        assert started2 >= end, (
            f"singleton overlap of {end - started2:.3f}s: pid {pid} until {end:.3f}, "
            f"pid {pid2} from {started2:.3f}"
        )
        gaps.append(started2 - end)
    return gaps


# -- shard ownership -------------------------------------------------------------------


def owned_by(runner_ids: Iterable[int]) -> int:
    """Shards held (unexpired) by ``runner_ids``."""
    from django.db.models.functions import Now

    return ShardLease.objects.filter(runner_id__in=list(runner_ids), expires_at__gt=Now()).count()


def unowned() -> int:
    """Shards held by nobody right now (free or expired)."""
    from django.db.models import Q
    from django.db.models.functions import Now

    return ShardLease.objects.filter(
        Q(runner__isnull=True) | Q(expires_at__isnull=True) | Q(expires_at__lte=Now())
    ).count()


def wait_all_owned_by(runner_ids: Callable[[], Iterable[int]], timeout: float,
                      step: float = 0.02) -> float:
    """Seconds until every shard is held by one of ``runner_ids()``; fails after ``timeout``."""
    started = time.monotonic()
    while True:
        ids = retry_db(lambda: list(runner_ids()))
        if retry_db(lambda ids=ids: owned_by(ids)) == SHARDS:  # type: ignore[misc]
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"shards not all owned by {ids} within {timeout}s")
        time.sleep(step)
