"""Real ``runworker`` subprocesses for multi-process tests: start, wait, kill, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def runner_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a runner that shares this test process's database."""
    env = dict(os.environ)
    env["CLUSTERKIT_TEST_BACKEND"] = settings.BACKEND
    env["CLUSTERKIT_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class RunnerProcess:
    """One ``manage.py runworker`` subprocess, its output kept in a log file."""

    def __init__(self, log_dir: Path, name: str, extra_env: dict[str, str] | None = None) -> None:
        self.log_path = log_dir / f"{name}.log"
        self.name = name
        self.extra_env = extra_env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str, timeout: float = 60.0) -> RunnerProcess:
        """Start the runner and wait until it says it holds its shards."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runworker", "--settings=settings.test", *args],
            cwd=ROOT,
            env=runner_env(self.extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: "listening on" in self.log(), timeout, f"{self.name} to start")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """``kill -9``: no drain, no release of leases."""
        self.signal(signal.SIGKILL)
        self.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the graceful stop."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def wait_until(check: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll ``check`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)
