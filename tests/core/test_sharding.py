"""Sharding: the documented stable hash, shard ranges, uniformity, rendezvous assignment."""

from __future__ import annotations

import collections
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.leases import assignment
from clusterkit.models import Runner
from clusterkit.sharding import rendezvous_score, shard_for, stable_hash

ROOT = Path(__file__).resolve().parents[2]

# Computed once from the documented formula:
# int.from_bytes(blake2b(value.encode("utf-8"), digest_size=8).digest(), "big")
PINNED = {
    "": 16476032584258269876,
    "user-42": 8043651368623730598,
    "order/2025": 1764226677093570138,
    "ü-ß-中": 12440172539942032965,
}
PINNED_SHARDS_300 = {"": 276, "user-42": 198, "order/2025": 138, "ü-ß-中": 165}


def runners(
    *machine_ids: int, weight: float = 1.0, groups: list[str] | None = None
) -> list[Runner]:
    """Unsaved Runner rows, all that :func:`assignment` looks at."""
    return [Runner(machine_id=i, weight=weight, groups=groups or ["default"]) for i in machine_ids]


# -- stable hash -----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), sorted(PINNED.items()))
def test_stable_hash_pinned_values(value: str, expected: int) -> None:
    assert stable_hash(value) == expected


@pytest.mark.parametrize(("value", "expected"), sorted(PINNED_SHARDS_300.items()))
def test_shard_for_pinned_values(value: str, expected: int) -> None:
    assert shard_for(value, 300) == expected


@settings(max_examples=200)
@given(st.text())
def test_stable_hash_is_the_documented_formula(value: str) -> None:
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest()
    assert stable_hash(value) == int.from_bytes(digest, "big")
    assert 0 <= stable_hash(value) < 2**64


def test_stable_hash_ignores_pythonhashseed() -> None:
    values = [*PINNED, "tenant:acme", "x" * 300]
    script = (
        "import json, sys\n"
        "from clusterkit.sharding import stable_hash, shard_for\n"
        "values = json.loads(sys.argv[1])\n"
        "print(json.dumps({'builtin': hash('tenant:acme'),"
        " 'stable': [stable_hash(v) for v in values],"
        " 'shards': [shard_for(v, 300) for v in values]}))\n"
    )
    import json

    outputs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        env.pop("DJANGO_SETTINGS_MODULE", None)  # the hash needs no settings
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(values)],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=True,
        )  # fmt: skip
        outputs.append(json.loads(done.stdout))
    first, second = outputs
    assert first["builtin"] != second["builtin"], "the seeds should change Python's hash()"
    assert first["stable"] == second["stable"] == [stable_hash(v) for v in values]
    assert first["shards"] == second["shards"] == [shard_for(v, 300) for v in values]


# -- shard_for -------------------------------------------------------------------------


@settings(max_examples=200)
@given(entity_id=st.text(max_size=300), shards=st.integers(1, 100_000))
def test_shard_for_is_in_range(entity_id: str, shards: int) -> None:
    shard = shard_for(entity_id, shards)
    assert 0 <= shard < shards
    assert shard == stable_hash(entity_id) % shards


@settings(max_examples=100)
@given(entity_id=st.text(max_size=100))
def test_shard_for_defaults_to_shards_per_group(entity_id: str) -> None:
    assert 0 <= shard_for(entity_id) < 300
    assert shard_for(entity_id) == shard_for(entity_id, 300)


def test_shard_for_follows_the_setting() -> None:
    with override_settings(CLUSTERKIT={"SHARDS_PER_GROUP": 7}):
        assert {shard_for(f"id-{i}") for i in range(500)} == set(range(7))
    assert shard_for("user-42") == PINNED_SHARDS_300["user-42"]


def test_distribution_over_300_shards_is_roughly_uniform() -> None:
    counts = collections.Counter(shard_for(f"user-{i}", 300) for i in range(30_000))
    assert set(counts) == set(range(300))
    expected = 100
    chi2 = sum((counts[s] - expected) ** 2 / expected for s in range(300))
    # 299 degrees of freedom: mean 299, sd ~24.5; 420 is ~5 sd out
    assert chi2 < 420, chi2
    assert min(counts.values()) > 50
    assert max(counts.values()) < 160


# -- rendezvous --------------------------------------------------------------------------


def test_every_shard_gets_one_of_the_runners() -> None:
    owners = assignment(runners(1, 2, 3), "default", 300)
    assert sorted(owners) == list(range(300))
    assert set(owners.values()) == {1, 2, 3}
    per_runner = collections.Counter(owners.values())
    assert all(60 <= n <= 140 for n in per_runner.values()), per_runner


def test_assignment_does_not_depend_on_runner_order() -> None:
    forward = assignment(runners(1, 2, 3, 4), "default", 300)
    backward = assignment(list(reversed(runners(1, 2, 3, 4))), "default", 300)
    assert forward == backward


def test_adding_a_runner_moves_about_a_quarter_to_it() -> None:
    before = assignment(runners(1, 2, 3), "default", 300)
    after = assignment(runners(1, 2, 3, 4), "default", 300)
    moved = [s for s in before if before[s] != after[s]]
    assert 0.15 * 300 <= len(moved) <= 0.35 * 300, len(moved)
    assert {after[s] for s in moved} == {4}
    assert {s for s, owner in after.items() if owner == 4} == set(moved)


def test_removing_a_runner_moves_only_its_shards() -> None:
    before = assignment(runners(1, 2, 3), "default", 300)
    after = assignment(runners(1, 3), "default", 300)
    moved = {s for s in before if before[s] != after[s]}
    assert moved == {s for s, owner in before.items() if owner == 2}
    assert set(after.values()) == {1, 3}


@settings(max_examples=30, deadline=None)
@given(
    members=st.sets(st.integers(1, 1023), min_size=2, max_size=6),
    group=st.sampled_from(["default", "jobs", "tenant-a"]),
)
def test_membership_changes_move_only_the_changed_runners_shards(
    members: set[int], group: str
) -> None:
    everyone = sorted(members)
    newcomer = everyone[-1]
    before = assignment(runners(*everyone[:-1], groups=[group]), group, 120)
    after = assignment(runners(*everyone, groups=[group]), group, 120)
    for shard in range(120):
        assert after[shard] in (before[shard], newcomer)


def test_runners_outside_the_group_get_nothing() -> None:
    members = runners(1, 2) + runners(3, groups=["jobs"])
    owners = assignment(members, "default", 100)
    assert set(owners.values()) == {1, 2}
    assert assignment(members, "jobs", 100) == dict.fromkeys(range(100), 3)
    assert assignment(members, "nobody", 100) == {}
    assert assignment([], "default", 100) == {}


def test_weight_gives_proportionally_more_shards() -> None:
    heavy = Runner(machine_id=1, weight=3.0, groups=["default"])
    owners = assignment([heavy, *runners(2, 3)], "default", 3000)
    per_runner = collections.Counter(owners.values())
    share = per_runner[1] / 3000  # expected 3 / (3 + 1 + 1) = 0.6
    assert 0.54 <= share <= 0.66, per_runner


def test_rendezvous_score_is_deterministic_and_positive() -> None:
    scores = [rendezvous_score(str(r), "default", 7) for r in range(50)]
    assert scores == [rendezvous_score(str(r), "default", 7) for r in range(50)]
    assert all(s > 0 for s in scores)
    assert rendezvous_score("1", "default", 7, 2.0) == pytest.approx(
        2 * rendezvous_score("1", "default", 7, 1.0)
    )
