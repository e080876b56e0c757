"""Publishes for the django-eventstream peer: ``python -m bench.eventstream_publish``.

Runs in its own process (Django configured with ``bench.eventstream_settings``): reads
commands from stdin, one per line — ``latency CHANNEL COUNT INTERVAL`` sends COUNT
events carrying their send time, INTERVAL seconds apart; ``burst CHANNEL COUNT`` sends
COUNT events as fast as ``send_event`` goes — and answers ``done`` after each.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.eventstream_settings"
    import django

    django.setup()
    from django_eventstream import send_event

    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "latency":
            channel, count, interval = words[1], int(words[2]), float(words[3])
            for _ in range(count):
                send_event(channel, "tick", {"t": time.time()})
                time.sleep(interval)
        elif words[0] == "burst":
            channel, count = words[1], int(words[2])
            for i in range(count):
                send_event(channel, "tick", i)
        print("done", flush=True)


if __name__ == "__main__":
    main()
