"""Operations: the read-only admin, ``manage.py workflows`` and the system checks."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings

from clusterkit.runner import Runner
from jobs.workflow import checks
from jobs.workflow.models import WorkflowExecution
from tests.testapp import workflows as wf

from .conftest import until_status

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_lists_executions_with_their_history(runner: Runner, admin_client: Client) -> None:
    done = wf.five_steps.start("admin")
    done.result(timeout=30)
    asleep = wf.sleeper.start("admin", 60.0)
    until_status(asleep, "suspended")
    page = admin_client.get("/admin/jobs/workflowexecution/").content.decode()
    assert done.execution_id in page and asleep.execution_id in page
    assert "completed" in page and "suspended" in page
    detail = admin_client.get(f"/admin/jobs/workflowexecution/{done.execution_id}/change/")
    assert detail.status_code == 200
    text = detail.content.decode()
    assert text.count("<p>1 (0 failed)</p>") == 5  # the attempts of each of the 5 steps
    for value in (10, 20, 30, 40, 50):
        assert f"<p>{value}</p>" in text  # their stored results
    assert admin_client.get("/admin/jobs/workflowexecution/add/").status_code == 403
    response = admin_client.post("/admin/jobs/workflowexecution/", {
        "action": "cancel_executions", "_selected_action": [asleep.execution_id],
    })
    assert response.status_code == 302
    assert until_status(asleep, "cancelled") == "cancelled"


def test_command_status_cancel_resume(runner: Runner) -> None:
    handle = wf.sleeper.start("cmd", 60.0)
    until_status(handle, "suspended")
    out = io.StringIO()
    call_command("workflows", "status", stdout=out)
    assert "test.sleeper" in out.getvalue()
    line = next(x for x in out.getvalue().splitlines() if x.startswith("test.sleeper"))
    assert line.split()[1:] == ["0", "1", "0", "0", "0"]
    out = io.StringIO()
    call_command("workflows", "status", handle.execution_id, stdout=out)
    assert "#1 sleep nap waiting" in out.getvalue()
    out = io.StringIO()
    call_command("workflows", "resume", handle.execution_id, stdout=out)
    assert "resumed" in out.getvalue()
    stalled = wf.five_steps.start("stalled")  # as if the runner lost its message
    stalled.result(timeout=30)
    WorkflowExecution.objects.filter(pk=stalled.execution_id).update(status="running")
    out = io.StringIO()
    call_command("workflows", "resume", "--running", stdout=out)
    assert out.getvalue().strip() == f"{stalled.execution_id}: resumed"
    assert until_status(stalled, "completed") == "completed"
    call_command("workflows", "cancel", handle.execution_id, stdout=io.StringIO())
    assert until_status(handle, "cancelled") == "cancelled"
    out = io.StringIO()
    call_command("workflows", "cancel", handle.execution_id, stdout=out)
    assert "already ended" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("workflows", "status", "nope")
    with pytest.raises(CommandError):
        call_command("workflows", "resume")


def test_system_checks_catch_bad_settings() -> None:
    assert checks.check_workflow_settings() == []
    with override_settings(WORKFLOWS={"SHARD_GROUP": "nowhere", "SLEEP": 1,
                                      "ACTIVITY_MAX_ATTEMPTS": 0,
                                      "SLEEP_IN_MEMORY_THRESHOLD": -1}):
        ids = sorted(m.id for m in checks.check_workflow_settings())
    assert ids == ["jobs.E102", "jobs.E103", "jobs.E104", "jobs.E105"]
    with override_settings(WORKFLOWS=[]):
        assert [m.id for m in checks.check_workflow_settings()] == ["jobs.E101"]
    with override_settings(WORKFLOWS={"SLEEP_IN_MEMORY_THRESHOLD": 10_000}):
        assert [m.id for m in checks.check_workflow_settings()] == ["jobs.W101"]
