"""Snowflake ids: bit layout, monotonicity (threads, bursts, clock steps back), round trips."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit import snowflake
from clusterkit.snowflake import (
    EPOCH_MS,
    MAX_MACHINE,
    MAX_SEQUENCE,
    SnowflakeGenerator,
    lowest_id_at,
    machine_of,
    timestamp_ms,
)

MAX_OFFSET = (1 << 41) - 1  # ~69 years of milliseconds: ids stay below 2**63


def fixed_clock(unix_ms: int) -> Callable[[], int]:
    """A clock that never moves."""
    return lambda: unix_ms


def scripted_clock(values: Iterable[int]) -> Callable[[], int]:
    """A clock returning ``values`` one per call, then repeating the last one."""
    it = iter(values)
    last = [EPOCH_MS]

    def clock() -> int:
        last[0] = next(it, last[0])
        return last[0]

    return clock


def make_id(offset_ms: int, machine: int, sequence: int) -> int:
    return (offset_ms << 22) | (machine << 12) | sequence


def sequence_of(snowflake_id: int) -> int:
    return snowflake_id & MAX_SEQUENCE


# -- layout ------------------------------------------------------------------------


def test_layout_of_first_ids() -> None:
    gen = SnowflakeGenerator(5, clock=fixed_clock(EPOCH_MS + 1234))
    first, second = gen.next_ids(2)
    assert first == (1234 << 22) | (5 << 12) | 0
    assert second == first + 1
    assert timestamp_ms(first) == EPOCH_MS + 1234
    assert machine_of(first) == 5
    assert sequence_of(second) == 1


def test_epoch_is_2025_01_01_utc() -> None:
    import datetime as dt

    assert int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp() * 1000) == EPOCH_MS


def test_machine_id_is_masked_to_ten_bits() -> None:
    gen = SnowflakeGenerator(MAX_MACHINE + 1 + 7, clock=fixed_clock(EPOCH_MS + 10))
    assert gen.machine_id == 7
    assert machine_of(gen.next_id()) == 7
    gen.machine_id = MAX_MACHINE
    assert machine_of(gen.next_id()) == MAX_MACHINE


def test_machine_change_is_stamped_into_later_ids() -> None:
    gen = SnowflakeGenerator(1, clock=fixed_clock(EPOCH_MS + 10))
    a = gen.next_id()
    gen.machine_id = 2
    b = gen.next_id()
    assert (machine_of(a), machine_of(b)) == (1, 2)
    assert b > a


# -- bursts and clock trouble --------------------------------------------------------


def test_4096_ids_per_millisecond_then_the_next_one() -> None:
    gen = SnowflakeGenerator(3, clock=fixed_clock(EPOCH_MS + 500))
    ids = gen.next_ids(MAX_SEQUENCE + 1 + 2)
    burst, overflow = ids[: MAX_SEQUENCE + 1], ids[MAX_SEQUENCE + 1 :]
    assert {timestamp_ms(i) for i in burst} == {EPOCH_MS + 500}
    assert [sequence_of(i) for i in burst] == list(range(MAX_SEQUENCE + 1))
    assert [timestamp_ms(i) for i in overflow] == [EPOCH_MS + 501] * 2
    assert [sequence_of(i) for i in overflow] == [0, 1]
    assert ids == sorted(set(ids))


def test_borrowed_millisecond_is_not_reused_when_the_clock_catches_up() -> None:
    clock = scripted_clock([EPOCH_MS + 500] * (MAX_SEQUENCE + 2) + [EPOCH_MS + 501] * 3)
    gen = SnowflakeGenerator(3, clock=clock)
    ids = gen.next_ids(MAX_SEQUENCE + 2 + 3)
    assert ids == sorted(set(ids))


def test_clock_stepping_back_keeps_ids_increasing() -> None:
    base = EPOCH_MS + 10_000
    clock = scripted_clock([base, base + 1, base - 5000, base - 5000, base - 1, base + 1, base + 2])
    gen = SnowflakeGenerator(9, clock=clock)
    ids = gen.next_ids(7)
    assert all(a < b for a, b in itertools.pairwise(ids))
    # while the clock is behind, the generator keeps counting on its last millisecond
    assert [timestamp_ms(i) for i in ids] == [
        base, base + 1, base + 1, base + 1, base + 1, base + 1, base + 2,
    ]  # fmt: skip
    assert {machine_of(i) for i in ids} == {9}


@settings(max_examples=150, deadline=None)
@given(
    machine=st.integers(0, MAX_MACHINE),
    readings=st.lists(st.integers(EPOCH_MS, EPOCH_MS + 10_000), min_size=1, max_size=300),
)
def test_any_clock_gives_increasing_ids(machine: int, readings: list[int]) -> None:
    gen = SnowflakeGenerator(machine, clock=scripted_clock(readings))
    ids = gen.next_ids(len(readings))
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert {machine_of(i) for i in ids} == {machine}
    for reading, made in zip(readings, ids, strict=True):
        assert timestamp_ms(made) >= reading  # never stamped earlier than the clock said


def test_clock_stuck_for_long_bursts() -> None:
    gen = SnowflakeGenerator(1, clock=scripted_clock([EPOCH_MS + 100, EPOCH_MS + 50]))
    ids = gen.next_ids(3 * (MAX_SEQUENCE + 1))
    assert ids == sorted(set(ids))
    assert timestamp_ms(ids[-1]) == EPOCH_MS + 102


def test_monotonic_and_unique_across_threads() -> None:
    gen = SnowflakeGenerator(17)
    per_thread = 5000
    results: list[list[int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        mine = [gen.next_id() for _ in range(per_thread)]
        with lock:
            results.append(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8
    for mine in results:
        assert all(a < b for a, b in itertools.pairwise(mine))
    everything = [i for mine in results for i in mine]
    assert len(set(everything)) == 8 * per_thread
    assert {machine_of(i) for i in everything} == {17}


def test_global_order_across_threads_matches_issue_order() -> None:
    gen = SnowflakeGenerator(2)
    issued: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(2000):
            with lock:  # the order ids were handed out in is the order they are recorded
                issued.append(gen.next_id())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert issued == sorted(issued)
    assert len(set(issued)) == len(issued)


def test_module_generator() -> None:
    ids = [snowflake.next_id() for _ in range(100)]
    assert ids == sorted(set(ids))
    assert {machine_of(i) for i in ids} == {snowflake.generator.machine_id}


# -- round trips -----------------------------------------------------------------------


@settings(max_examples=200)
@given(
    offset=st.integers(0, MAX_OFFSET),
    machine=st.integers(0, MAX_MACHINE),
    sequence=st.integers(0, MAX_SEQUENCE),
)
def test_fields_round_trip(offset: int, machine: int, sequence: int) -> None:
    made = make_id(offset, machine, sequence)
    assert 0 <= made < 2**63
    assert timestamp_ms(made) == EPOCH_MS + offset
    assert machine_of(made) == machine
    assert lowest_id_at(EPOCH_MS + offset) <= made < lowest_id_at(EPOCH_MS + offset + 1)
    assert machine_of(lowest_id_at(EPOCH_MS + offset)) == 0
    assert timestamp_ms(lowest_id_at(EPOCH_MS + offset)) == EPOCH_MS + offset


@settings(max_examples=100)
@given(offset=st.integers(1, MAX_OFFSET), machine=st.integers(0, MAX_MACHINE))
def test_generated_id_round_trips(offset: int, machine: int) -> None:
    made = SnowflakeGenerator(machine, clock=fixed_clock(EPOCH_MS + offset)).next_id()
    assert made == make_id(offset, machine, 0) == lowest_id_at(EPOCH_MS + offset) | machine << 12
    assert timestamp_ms(made) == EPOCH_MS + offset
    assert machine_of(made) == machine


def test_lowest_id_before_the_epoch_is_zero() -> None:
    assert lowest_id_at(EPOCH_MS) == 0
    assert lowest_id_at(EPOCH_MS - 1) == 0
    assert lowest_id_at(0) == 0


@settings(max_examples=100)
@given(
    a=st.integers(EPOCH_MS, EPOCH_MS + MAX_OFFSET), b=st.integers(EPOCH_MS, EPOCH_MS + MAX_OFFSET)
)
def test_lowest_id_is_ordered_like_time(a: int, b: int) -> None:
    assert (lowest_id_at(a) < lowest_id_at(b)) == (a < b)
