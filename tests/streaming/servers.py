"""Real ASGI servers (uvicorn subprocesses) and a blocking SSE reader over real HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.cluster.harness import ROOT, runner_env, wait_until

from .support import Frame, SSEParser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Server:
    """``uvicorn tests.streaming.asgi:application`` on a free port of 127.0.0.1."""

    def __init__(self, log_dir: Path, name: str, **env: str) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"{name}.log"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Server:
        env = runner_env({"DJANGO_SETTINGS_MODULE": "tests.streaming.settings", **self.env})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.streaming.asgi:application",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
        )
        wait_until(lambda: listening(self.port) or self.proc.poll() is not None, timeout,
                   f"{self.log_path.name} to listen")
        assert self.proc.poll() is None, self.log_path.read_text()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        assert response.status == 200, data
        return dict(json.loads(data))


class HttpSSE:
    """An SSE request over a real socket; read until enough events arrived."""

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        self.conn.request("GET", path, headers=headers or {})
        self.response = self.conn.getresponse()
        self.parser = SSEParser()

    def events(self, count: int, timeout: float = 30) -> list[Frame]:
        deadline = time.monotonic() + timeout
        while len(self.parser.events()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {[f.id for f in self.parser.events()]}")
            chunk = self.response.read1(65536)
            if not chunk:
                raise AssertionError("the stream ended")
            self.parser.feed(chunk)
        return self.parser.events()

    def close(self) -> None:
        self.conn.close()
