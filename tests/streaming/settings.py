"""Settings of the streaming tests' ASGI server subprocesses: ``settings.test`` + routing."""

import os

from settings.test import *  # noqa: F403
from settings.test import CLUSTERKIT, STREAMING

ASGI_APPLICATION = "tests.streaming.asgi.application"
ROOT_URLCONF = "tests.streaming.urls"
STREAMING = {
    **STREAMING,
    "TENANT_RESOLVER": "tests.streaming.support.tenant_from_header",
    "AUTHORIZE": "streaming.auth.allow_all",
    "HEARTBEAT_INTERVAL": 1.0,
    "TAIL_CHECK_DELAY": 0.2,
}
# On the embedded backend the server hosts the streams itself (the in-memory layer
# cannot reach another process); on PostgreSQL + Redis a runner elsewhere does.
CLUSTERKIT = {**CLUSTERKIT, "EMBEDDED_RUNNER": os.environ.get("CK_STREAMING_RUNNER") == "1"}
