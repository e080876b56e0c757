"""Real HTTP clients against real ASGI servers (uvicorn subprocesses)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

import streaming

from .servers import HttpSSE, Server

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.fixture
def server(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(name: str = "web", **env: str) -> Server:
        srv = Server(tmp_path, f"{name}-{len(started)}", **env)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


@pytest.mark.skipif(ON_POSTGRES, reason="the embedded variant: one server hosting its streams")
def test_embedded_server_streams_and_resumes(server, chan):
    web = server("web", CK_STREAMING_RUNNER="1")
    headers = {"X-Tenant": "t1"}
    client = HttpSSE(web.port, f"/streams/{chan}/events/?lastEventId=0", headers)
    assert client.response.status == 200
    assert client.response.getheader("Cache-Control") == "no-cache"
    assert client.response.getheader("X-Accel-Buffering") == "no"
    for i in range(10):  # stored here, appended by the server's runner
        streaming.publish(chan, "tick", i, tenant="t1")
    events = client.events(10)
    assert [e.id for e in events] == [str(i) for i in range(1, 11)]
    client.close()
    for i in range(10, 15):
        streaming.publish(chan, "tick", i, tenant="t1")
    again = HttpSSE(web.port, f"/streams/{chan}/events/", {**headers, "Last-Event-ID": "10"})
    assert [json.loads(e.data or "") for e in again.events(5)] == list(range(10, 15))
    again.close()


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL + Redis between processes")
def test_publish_in_one_server_receive_in_another(streams, server, chan):
    a, b = server("web-a"), server("web-b")
    headers = {"X-Tenant": "t1"}
    readers = [HttpSSE(srv.port, f"/streams/{chan}/events/", headers) for srv in (a, b)]
    time.sleep(0.5)  # both servers' hubs joined the group

    def publish() -> None:
        for i in range(50):
            a.post("/test/publish/", {"channel": chan, "event": "tick", "data": i, "tenant": "t1"})

    thread = threading.Thread(target=publish)
    thread.start()
    for reader in readers:
        events = reader.events(50)
        assert [int(e.id or 0) for e in events] == list(range(1, 51))
        assert [json.loads(e.data or "") for e in events] == list(range(50))
    thread.join()
    # Another tenant's reader on server B sees none of it.
    other = HttpSSE(b.port, f"/streams/{chan}/events/?lastEventId=0", {"X-Tenant": "t2"})
    b_post = b.post("/test/publish/", {"channel": chan, "event": "tick", "data": "t2",
                                       "tenant": "t2", "wait": True})
    assert b_post["seq"] == 1
    [only] = other.events(1)
    assert json.loads(only.data or "") == "t2"
    for reader in [*readers, other]:
        reader.close()


@pytest.mark.skipif(not ON_POSTGRES, reason="needs Redis between processes")
def test_a_burst_beyond_the_layer_capacity_arrives_complete(streams, server, chan):
    """Redis drops group messages beyond its capacity; gaps are refilled from the log."""
    b = server("web-b")
    reader = HttpSSE(b.port, f"/streams/{chan}/events/", {"X-Tenant": "t1"})
    time.sleep(0.5)
    from streaming.entities import Stream

    Stream.send_many([(f"t1/{chan}", "append", {"event": "tick", "data": i})
                      for i in range(600)])
    events = reader.events(600, timeout=60)
    assert [int(e.id or 0) for e in events] == list(range(1, 601))
    reader.close()
