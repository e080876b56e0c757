"""The admin shard view in headless Chromium against a live two-runner cluster.

Log in as staff, see both runners and all 300 shards, retry a failed job, drain a runner
and watch its shards move to the other one, and be refused as a non-staff user.
Screenshots go to ``artifacts/ops/`` (ignored by git) and the test's ``tmp_path``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from clusterkit.models import ShardLease
from jobs import engine
from tests.cluster.harness import ROOT, RunnerProcess, wait_until
from tests.streaming.test_browser import CHROMIUM  # the same browser lookup

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium binary (install it: apt-get install -y chromium)"
    ),
]
ARTIFACTS = ROOT / "artifacts" / "ops"


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Any]]:
    """Starts headless Chromium when called (after the runners, which must not inherit
    ``DJANGO_ALLOW_ASYNC_UNSAFE``: Playwright's sync API keeps an event loop running in
    this thread, and the test's own database calls stay synchronous all the same)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (the test extra has it)"
    )
    started: list[Any] = []

    def start() -> Any:
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_api.sync_playwright().start()
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )  # fmt: skip
        started.append((playwright, instance))
        return instance

    yield start
    for playwright, instance in started:
        instance.close()
        playwright.stop()


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    shutil.copy(tmp_path / f"{name}.png", ARTIFACTS / f"{name}.png")


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/clusterkit/cluster/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")


def owners() -> dict[int, int]:
    counts: dict[int, int] = {}
    for runner_id in ShardLease.objects.filter(runner__isnull=False).values_list(
        "runner_id", flat=True
    ):
        counts[runner_id] = counts.get(runner_id, 0) + 1
    return counts


def test_shard_view_live(
    spawn: Callable[..., RunnerProcess], live_server: Any, browser: Callable[[], Any],
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.RATELIMIT = {**settings.RATELIMIT, "RULES": []}  # many logins from one address
    staff = User.objects.create_user("operator", password="pw", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(codename__in=["view_cluster", "operate_cluster"])
    )
    User.objects.create_user("visitor", password="pw")
    spawn("a")
    spawn("b")
    wait_until(lambda: len(owners()) == 2 and sum(owners().values()) == 300, 30,
               "both runners to hold shards")  # fmt: skip
    (job,) = engine.enqueue_many([engine.NewJob(
        name="tests.testapp.tasks.always_fails", args=["browser"], kwargs={}, max_attempts=1,
    )])  # fmt: skip
    wait_until(lambda: engine.state(job.id).status == engine.FAILED, 30, "the job to fail")

    chromium = browser()
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, live_server.url, "operator")
    page.wait_for_selector("#ck-groups .ck-shard")
    page.wait_for_function("document.querySelectorAll('tr.ck-runner').length === 2")
    runner_ids = [int(r) for r in page.eval_on_selector_all(
        "tr.ck-runner", "rows => rows.map(r => r.dataset.runnerId)"
    )]  # fmt: skip
    assert sorted(runner_ids) == sorted(owners())
    page.wait_for_function("document.querySelectorAll('.ck-shard.unowned').length === 0")
    cells = page.eval_on_selector_all(".ck-shard", "cs => cs.map(c => c.dataset.runner)")
    assert len(cells) == 300
    assert {int(c) for c in cells} == set(runner_ids)
    shoot(page, tmp_path, "1-two-runners")

    # retry the failed job
    page.wait_for_selector(f"tr[data-job='{job.id}'] button")
    page.click(f"tr[data-job='{job.id}'] button")
    page.wait_for_selector("text=queued again")
    wait_until(lambda: len(engine.state(job.id).attempts) == 2, 10, "the second attempt")
    shoot(page, tmp_path, "2-job-retried")

    # drain one runner: its shards move to the other, and the grid follows
    drained, other = runner_ids
    moving = page.eval_on_selector(
        f".ck-shard[data-runner='{drained}']", "c => c.dataset.shard"
    )
    page.click(f"button[name='drain-{drained}']")
    page.wait_for_selector("text=is draining")
    page.wait_for_function(
        f"document.querySelectorAll(\".ck-shard[data-runner='{other}']\").length === 300",
        timeout=30_000,
    )
    assert page.get_attribute(f".ck-shard[data-shard='{moving}']", "data-runner") == str(other)
    assert owners() == {other: 300}
    drained_row = page.inner_text(f"tr[data-runner-id='{drained}']")
    assert "yes" in drained_row and "unhealthy" in drained_row
    shoot(page, tmp_path, "3-after-drain")

    # someone who is not staff is sent back to the login page
    visitor = chromium.new_page()
    log_in(visitor, live_server.url, "visitor")
    visitor.goto(f"{live_server.url}/admin/clusterkit/cluster/")
    assert "/admin/login/" in visitor.url
    assert visitor.query_selector("#ck-groups") is None
    shoot(visitor, tmp_path, "4-visitor-refused")
