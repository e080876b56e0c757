"""A headless Chromium page with a plain EventSource receives the demo page's events."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

import streaming

from .test_servers import server  # noqa: F401  (fixture)

CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)
pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium binary (install it: apt-get install -y chromium)",
    ),
]
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def dump_dom(url: str, profile: Path, budget_ms: int = 10000) -> str:
    """The DOM after the page ran; ``closeAfter`` makes it close its EventSource, which
    lets Chromium's virtual time run out (an open stream keeps the network busy)."""
    assert CHROMIUM is not None
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
        capture_output=True, timeout=90, check=False,
    )
    return result.stdout.decode(errors="replace")


def test_demo_page_receives_events(request, server, chan, tmp_path):  # noqa: F811
    env = {} if ON_POSTGRES else {"CK_STREAMING_RUNNER": "1"}
    if ON_POSTGRES:
        request.getfixturevalue("streams")
    web = server("web", **env)
    for i in range(5):
        streaming.publish(chan, "tick", {"n": i}, tenant="public")
    streaming.publish(chan, "note", "done", tenant="public", wait=ON_POSTGRES)
    dom = ""
    for _ in range(3):  # the runner may still be appending the first time
        page = f"/streams/demo/?channel={chan}&lastEventId=0&closeAfter=6"
        dom = dump_dom(web.url(page), tmp_path / "p")
        if len(re.findall(r'class="event"', dom)) >= 6:
            break
    seqs = re.findall(r'data-seq="(\d+)"', dom)
    assert seqs == ["1", "2", "3", "4", "5", "6"], dom[-2000:]
    assert 'data-event="note"' in dom
    assert '<span id="state">closed</span>' in dom
