"""The read-only admin of the cluster's tables."""

from __future__ import annotations

import dataclasses

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from clusterkit import leases, snowflake
from clusterkit.admin import MessageAdmin, ReplyAdmin, RunnerAdmin, ShardLeaseAdmin
from clusterkit.models import Message, Reply, ReplyStatus, Runner, ShardLease
from clusterkit.storage import Completion, OutgoingMessage, Storage

pytestmark = pytest.mark.django_db

MODELS = [Runner, ShardLease, Message, Reply]


@dataclasses.dataclass
class Cluster:
    """A few rows of every table."""

    runner: Runner
    lease: ShardLease
    answered: Message
    pending: Message
    reply: Reply


def message(entity_id: str, shard: int) -> OutgoingMessage:
    return OutgoingMessage(
        id=snowflake.next_id(),
        message_key=None,
        shard_group="default",
        shard_id=shard,
        entity_type="Counter",
        entity_id=entity_id,
        rpc="increment",
        payload='{"by": 1}',
        headers="{}",
    )


@pytest.fixture
def cluster() -> Cluster:
    runner = leases.register("127.0.0.1:9999", ["default"], 1.0, "test")
    leases.ensure_shards(["default"], 2)
    state = leases.tick(runner.machine_id, ["default"], 2, 30.0, set(), False)
    answered, pending = message("admin-answered", 0), message("admin-pending", 1)
    storage = Storage()
    storage.save([answered, pending])
    reply_id = snowflake.next_id()
    ok, _ = storage.commit(
        runner.machine_id,
        [
            Completion(answered.id, reply_id, "default", 0, state.held[("default", 0)],
                       int(ReplyStatus.SUCCESS), "41", False),
        ],
    )  # fmt: skip
    assert len(ok) == 1
    return Cluster(
        runner=runner,
        lease=ShardLease.objects.get(shard_group="default", shard_id=0),
        answered=Message.objects.get(pk=answered.id),
        pending=Message.objects.get(pk=pending.id),
        reply=Reply.objects.get(pk=reply_id),
    )


def url(model: type, view: str, *args: object) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def test_every_model_is_registered_read_only() -> None:
    for model, admin_class in [
        (Runner, RunnerAdmin),
        (ShardLease, ShardLeaseAdmin),
        (Message, MessageAdmin),
        (Reply, ReplyAdmin),
    ]:
        assert isinstance(admin.site._registry[model], admin_class)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_opens(admin_client: Client, cluster: Cluster, model: type) -> None:
    response = admin_client.get(url(model, "changelist"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "delete_selected" not in content
    assert url(model, "add") not in content


def test_change_views_open_read_only(admin_client: Client, cluster: Cluster) -> None:
    rows = [
        (Runner, cluster.runner.pk),
        (ShardLease, cluster.lease.pk),
        (Message, cluster.answered.pk),
        (Message, cluster.pending.pk),
        (Reply, cluster.reply.pk),
    ]
    for model, pk in rows:
        response = admin_client.get(url(model, "change", pk))
        assert response.status_code == 200, (model, pk)
        content = response.content.decode()
        assert 'name="_save"' not in content
        assert url(model, "delete", pk) not in content


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_cannot_add(admin_client: Client, model: type) -> None:
    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.post(url(model, "add"), {}).status_code == 403


def test_cannot_change_or_delete(admin_client: Client, cluster: Cluster) -> None:
    pk = cluster.answered.pk
    response = admin_client.post(url(Message, "change", pk), {"entity_id": "hacked"})
    assert response.status_code == 403
    assert admin_client.get(url(Message, "delete", pk)).status_code == 403
    assert admin_client.post(url(Message, "delete", pk), {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        url(Message, "changelist"),
        {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert Message.objects.filter(pk=pk, entity_id="admin-answered").exists()
    assert admin_client.post(url(Runner, "delete", cluster.runner.pk)).status_code == 403
    assert Runner.objects.filter(pk=cluster.runner.pk).exists()


def test_message_shows_created_at_and_links_its_reply(
    admin_client: Client, cluster: Cluster
) -> None:
    created = cluster.answered.created_at.isoformat(sep=" ", timespec="milliseconds")
    response = admin_client.get(url(Message, "change", cluster.answered.pk))
    content = response.content.decode()
    assert "created at" in content.lower()
    assert created in content
    assert url(Reply, "change", cluster.reply.pk) in content
    assert "success" in content
    pending = admin_client.get(url(Message, "change", cluster.pending.pk)).content.decode()
    assert "no reply yet" in pending


def test_message_changelist_links_replies_and_shows_columns(
    admin_client: Client, cluster: Cluster
) -> None:
    content = admin_client.get(url(Message, "changelist")).content.decode()
    assert url(Reply, "change", cluster.reply.pk) in content
    assert cluster.pending.created_at.isoformat(sep=" ", timespec="milliseconds") in content
    for column in ("created at", "entity type", "entity id", "rpc", "shard id", "reply"):
        assert column in content.lower(), column


def test_reply_links_its_request(admin_client: Client, cluster: Cluster) -> None:
    content = admin_client.get(url(Reply, "change", cluster.reply.pk)).content.decode()
    assert url(Message, "change", cluster.answered.pk) in content
    listing = admin_client.get(url(Reply, "changelist")).content.decode()
    assert url(Message, "change", cluster.answered.pk) in listing


@pytest.mark.parametrize(
    ("query", "found", "missing"),
    [
        ("admin-answered", "admin-answered", "admin-pending"),
        ("admin-pending", "admin-pending", "admin-answered"),
        ("Counter", "admin-answered", None),
    ],
)
def test_message_search_by_entity(
    admin_client: Client, cluster: Cluster, query: str, found: str, missing: str | None
) -> None:
    response = admin_client.get(url(Message, "changelist"), {"q": query})
    assert response.status_code == 200
    entity_ids = {m.entity_id for m in response.context["cl"].result_list}
    assert found in entity_ids
    if missing:
        assert missing not in entity_ids


def test_message_outcome_filter(admin_client: Client, cluster: Cluster) -> None:
    pending = admin_client.get(url(Message, "changelist"), {"outcome": "pending"})
    assert [m.pk for m in pending.context["cl"].result_list] == [cluster.pending.pk]
    success = admin_client.get(url(Message, "changelist"), {"outcome": "0"})
    assert [m.pk for m in success.context["cl"].result_list] == [cluster.answered.pk]
    failed = admin_client.get(url(Message, "changelist"), {"outcome": "1"})
    assert list(failed.context["cl"].result_list) == []


@pytest.mark.parametrize(
    "query", ["admin-answered", "Counter", "{answered}", ""], ids=["id", "type", "pk", "empty"]
)
def test_reply_search(admin_client: Client, cluster: Cluster, query: str) -> None:
    query = query.format(answered=cluster.answered.pk)
    response = admin_client.get(url(Reply, "changelist"), {"q": query})
    assert response.status_code == 200
    assert [r.pk for r in response.context["cl"].result_list] == [cluster.reply.pk]
    nothing = admin_client.get(url(Reply, "changelist"), {"q": "admin-pending"})
    assert list(nothing.context["cl"].result_list) == []


def test_filters_open(admin_client: Client, cluster: Cluster) -> None:
    for model, params in [
        (Runner, {"healthy__exact": "1"}),
        (ShardLease, {"shard_group": "default"}),
        (Message, {"processed__exact": "0", "entity_type": "Counter"}),
        (Reply, {"status__exact": "0"}),
    ]:
        response = admin_client.get(url(model, "changelist"), params)
        assert response.status_code == 200, model
        assert "cl" in response.context, model


def test_runner_shows_its_lease_count(admin_client: Client, cluster: Cluster) -> None:
    response = admin_client.get(url(Runner, "changelist"))
    (row,) = response.context["cl"].result_list
    assert row._leases == 2


def test_non_staff_is_sent_to_login(client: Client, django_user_model: type) -> None:
    user = django_user_model.objects.create_user(username="plain", password="pw")
    client.force_login(user)
    response = client.get(url(Message, "changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
