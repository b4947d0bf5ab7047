"""Reading what a real server exposes to operators: its Prometheus scrape."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One GET /metrics, parsed with prometheus-client's own parser."""

    def __init__(self, http_url: str) -> None:
        response = httpx.get(f"{http_url}/metrics", timeout=10)
        response.raise_for_status()
        assert response.headers["content-type"].startswith("text/plain")
        self.text = response.text
        self.samples = [
            sample for family in text_string_to_metric_families(self.text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self) -> set[str]:
        return {value for sample in self.samples for value in sample.labels.values()}
