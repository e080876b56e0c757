"""Reading Prometheus text exposition in tests: one sample value by name and labels."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by sample name and label set."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels`` (0 when absent: a counter not yet born)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def fetch(url: str) -> Samples:
    """Scrape ``url``."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return parse(response.read().decode())


def metrics_url(log: str) -> str:
    """The metrics address a ``runworker --metrics-port`` printed."""
    match = re.search(r"metrics on (http://\S+/metrics)", log)
    assert match, f"no metrics address in the runner's output:\n{log}"
    return match.group(1)


def labels_of(samples: Samples, name: str) -> list[Mapping[str, str]]:
    """The label sets that sample ``name`` has."""
    return [dict(ls) for (n, ls) in samples if n == name]
