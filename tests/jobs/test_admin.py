"""The jobs admin: read-only list and detail, retry and cancel actions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from jobs import engine
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_list_detail_and_cancel_action(admin_client: Client) -> None:
    later = tasks.add.using(run_after=timezone.now() + dt.timedelta(hours=1)).enqueue(1, 2)
    page = admin_client.get("/admin/jobs/job/")
    assert page.status_code == 200 and later.id in page.content.decode()
    assert "READY" in page.content.decode()
    assert admin_client.get(f"/admin/jobs/job/{later.id}/change/").status_code == 200
    assert admin_client.get("/admin/jobs/job/add/").status_code == 403
    response = admin_client.post(
        "/admin/jobs/job/", {"action": "cancel_jobs", "_selected_action": [later.id]}
    )
    assert response.status_code == 302
    assert engine.state(later.id).status == "CANCELLED"
    response = admin_client.post(
        "/admin/jobs/job/", {"action": "retry_jobs", "_selected_action": [later.id]}
    )
    assert engine.state(later.id).status == "READY"
