"""The README's demo command, as a user runs it: embedded, and scaled out on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_demo_on_the_embedded_default(tmp_path: Path) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.dev",
           "CLUSTERKIT_SQLITE_PATH": str(tmp_path / "demo.sqlite3")}
    run(["migrate", "--no-input", "-v", "0"], env)
    out = run(["demo", "--calls", "1000"], env)
    assert "1000 handled" in out
    assert "100 sends → 20 handled, 80 deduped" in out
    assert "on attempt 3" in out
    assert "demo finished" in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.subprocess
def test_demo_scaled_out_with_two_runners(on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip("scaling out needs PostgreSQL")
    name = connection.settings_dict["NAME"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.prod",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
           "REDIS_URL": "redis://127.0.0.1:6379/15"}
    out = run(["demo", "--calls", "2000", "--runners", "2"], env)
    assert "started 2 runners" in out
    assert "2000 handled" in out
    assert "demo finished" in out
