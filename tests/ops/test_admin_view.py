"""The admin shard view through Django's test client: permissions, state, actions, CSRF."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from clusterkit.models import Message, Reply, ReplyStatus, Runner
from clusterkit.runner import Runner as RunnerProcess
from tests.cluster.harness import wait_until
from tests.testapp.entities import Flaky

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/admin/clusterkit/cluster/"


def user(name: str, *, staff: bool = True, perms: tuple[str, ...] = ()) -> Client:
    account = User.objects.create_user(name, password="pw", is_staff=staff)
    account.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client = Client(enforce_csrf_checks=True)
    client.force_login(account)
    return client


def test_only_staff_with_the_view_permission_see_it() -> None:
    assert Client().get(URL).status_code == 302  # anonymous: to the login page
    outsider = user("outsider", staff=False, perms=("view_cluster",))
    refused = outsider.get(URL)
    assert refused.status_code == 302 and "/admin/login/" in refused["Location"]
    assert user("plain-staff").get(URL).status_code == 403
    assert user("plain-staff2").get(URL + "state/").status_code == 403
    viewer = user("viewer", perms=("view_cluster",))
    page = viewer.get(URL)
    assert page.status_code == 200
    assert b'id="ck-groups"' in page.content
    assert b'data-can-operate="0"' in page.content
    # the admin index links to it for them
    assert URL.encode() in viewer.get("/admin/").content


def test_state_shows_runners_shards_and_failures(runner: RunnerProcess) -> None:
    with pytest.raises(Exception, match="flaky failure"):
        Flaky.client("poison").attempt.options(timeout=20).call(tag="ops-admin", fail_times=99)
    viewer = user("viewer", perms=("view_cluster",))
    wait_until(lambda: viewer.get(URL + "state/").json()["runners"][0]["entities"] >= 1, 10,
               "a heartbeat with the entity count")  # fmt: skip
    state = viewer.get(URL + "state/").json()
    (row,) = state["runners"]
    assert row["machine_id"] == runner.runner_id and row["healthy"] and row["shards"] == 300
    (group,) = state["groups"]
    assert len(group["shards"]) == 300
    assert {s["runner"] for s in group["shards"]} == {runner.runner_id}
    assert all(s["epoch"] >= 1 and s["expires_in"] > 0 for s in group["shards"])
    (failed,) = [m for m in state["failed_messages"] if m["entity_type"] == Flaky.entity_type]
    assert failed["rpc"] == "attempt" and "flaky failure" in failed["error"]


def test_actions_need_the_operate_permission_and_a_csrf_token(runner: RunnerProcess) -> None:
    with pytest.raises(Exception, match="flaky failure"):
        Flaky.client("again").attempt.options(timeout=20).call(tag="ops-admin-2", fail_times=4)
    message_id = Message.objects.get(entity_type=Flaky.entity_type, entity_id="again").pk
    viewer = user("viewer", perms=("view_cluster",))
    assert viewer.post(f"{URL}retry-message/{message_id}/").status_code == 403  # CSRF first
    operator = user("operator", perms=("view_cluster", "operate_cluster"))
    assert operator.post(f"{URL}retry-message/{message_id}/").status_code == 403  # no token
    operator.get(URL)
    token = operator.cookies["csrftoken"].value
    assert operator.get(f"{URL}retry-message/{message_id}/").status_code == 405  # POST only
    done = operator.post(f"{URL}retry-message/{message_id}/", {"csrfmiddlewaretoken": token})
    assert done.status_code == 302 and done["Location"] == URL
    # the copy runs: Flaky fails 4 times per tag in all, so its fifth attempt succeeds
    copy = Message.objects.filter(entity_type=Flaky.entity_type, entity_id="again").exclude(
        pk=message_id
    )
    wait_until(lambda: Reply.objects.filter(request_id__in=copy.values("id"),
                                            status=ReplyStatus.SUCCESS).exists(),
               20, "the retried message to succeed")  # fmt: skip
    drained = operator.post(f"{URL}drain/{runner.runner_id}/", {"csrfmiddlewaretoken": token})
    assert drained.status_code == 302
    assert Runner.objects.get(pk=runner.runner_id).draining
    missing = operator.post(f"{URL}drain/999999/", {"csrfmiddlewaretoken": token}, follow=True)
    assert b"No runner #999999" in missing.content


def test_state_shows_singletons_and_cron_schedules(
    runner: RunnerProcess, clean_schedules: None
) -> None:
    import asyncio
    import datetime as dt

    from clusterkit.cron import cron
    from clusterkit.singleton import singleton

    @singleton("ops-view")
    async def forever() -> None:
        await asyncio.Event().wait()

    @cron("*/5 * * * *", name="ops-view-cron")
    def every_five_minutes() -> None:
        pass

    runner.lease_wake.set()  # start the new singletons now
    viewer = user("viewer", perms=("view_cluster",))

    def cron_scheduled() -> bool:
        state = viewer.get(URL + "state/").json()
        crons = {c["name"]: c for c in state["crons"]}
        pending = Message.objects.filter(entity_id="ops-view-cron", processed=False).exists()
        return "ops-view-cron" in crons and pending

    wait_until(cron_scheduled, 10, "the cron seed to store the next instant")
    state = viewer.get(URL + "state/").json()
    where = {s["name"]: s["runner"] for s in state["singletons"]}
    assert where["ops-view"] == runner.runner_id
    assert where["cron:ops-view-cron"] == runner.runner_id
    (row,) = [c for c in state["crons"] if c["name"] == "ops-view-cron"]
    assert row["last_run"] is None and row["expression"] == "*/5 * * * *"
    nxt = dt.datetime.fromisoformat(row["next_run"])
    assert nxt.minute % 5 == 0 and nxt > dt.datetime.now(dt.UTC)
