"""The context log filter, the runner's lifecycle records, and the operations checks."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

import pytest
from django.core import checks
from django.test import override_settings

from clusterkit import context, logfilter
from clusterkit.logfilter import ContextFilter, ContextFormatter
from clusterkit.runner import Runner


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(ContextFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("tests.ops.logfilter")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def test_records_carry_the_request_and_cluster_context() -> None:
    logfilter.process_runner.clear()  # no runner in this process now
    stream = io.StringIO()
    log = _logger(stream)
    ctx = context.RequestContext(
        request_id="req-1", tenant_id="acme", traceparent=f"00-{'a' * 32}-{'b' * 16}-01",
        cluster=context.ClusterState("default", 17, 3, "Counter", "c-9"),
    )
    with context.use(ctx):
        log.info("inside")
    log.info("outside")
    inside, outside = stream.getvalue().splitlines()
    assert inside == (
        f"INFO inside [request_id=req-1 tenant_id=acme trace_id={'a' * 32} runner_id=3 "
        "shard=default:17 entity=Counter/c-9]"
    )
    assert outside == "INFO outside"


def test_a_format_string_can_name_every_field() -> None:
    stream = io.StringIO()
    log = _logger(stream)
    log.handlers[0].setFormatter(logging.Formatter("%(request_id)s %(shard)s %(message)s"))
    log.info("plain")
    assert stream.getvalue() == "- - plain\n"


@pytest.mark.django_db(transaction=True)
def test_runner_logs_its_lifecycle(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clusterkit.runner")
    runner = Runner()
    thread = threading.Thread(target=lambda: asyncio.run(runner.run()), daemon=True)
    thread.start()
    assert runner.ready.wait(30)
    runner.stop()
    thread.join(30)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records
                if r.name == "clusterkit.runner"]  # fmt: skip
    rid = runner.runner_id
    texts = [m for _, m in messages]
    assert any(m.startswith(f"runner {rid} started at ") for m in texts), texts
    assert ("INFO", f"runner {rid} acquired 300 shards") in messages
    assert any(m.startswith(f"runner {rid} draining:") for m in texts), texts
    assert ("INFO", f"runner {rid} released 300 shards") in messages or (
        "INFO", f"runner {rid} released its last 300 shards") in messages
    assert ("INFO", f"runner {rid} stopped") in messages
    assert not [m for level, m in messages if level == "WARNING"], messages


@pytest.mark.parametrize(
    ("overrides", "check_id"),
    [
        ({"METRICS_PORT": 70000}, "clusterkit.E007"),
        ({"METRICS_PORT": "9100"}, "clusterkit.E007"),
        ({"METRICS_ADDRESS": ""}, "clusterkit.E008"),
    ],
)
def test_operations_settings_are_checked(overrides: dict[str, object], check_id: str) -> None:
    with override_settings(CLUSTERKIT=overrides):
        ids = {m.id for m in checks.run_checks()}
    assert check_id in ids


def test_prometheus_middleware_must_come_in_a_pair() -> None:
    from django.conf import settings

    alone = [m for m in settings.MIDDLEWARE if not m.endswith("PrometheusAfterMiddleware")]
    with override_settings(MIDDLEWARE=alone):
        ids = {m.id for m in checks.run_checks()}
    assert "clusterkit.W004" in ids
    assert "clusterkit.W004" not in {m.id for m in checks.run_checks()}


def test_runworker_refuses_a_bad_metrics_port() -> None:
    import socket

    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=r"0\.\.65535"):
        call_command("runworker", "--metrics-port", "70000")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(CommandError, match="cannot serve metrics"):
            call_command("runworker", "--metrics-port", str(taken.getsockname()[1]))
    finally:
        taken.close()
