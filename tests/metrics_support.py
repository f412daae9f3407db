"""Reading a /metrics scrape in tests: every sample by name and labels."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


class Scrape:
    """A parsed Prometheus text exposition."""

    def __init__(self, text: str) -> None:
        self.families: dict[str, str] = {}  # family name -> type
        self.samples: dict[Key, float] = {}
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value, None when the scrape has no such sample."""
        return self.samples.get((name, frozenset(labels.items())))

    def by(self, name: str, label: str, **fixed: str) -> dict[str, float]:
        """Non-zero samples of `name` whose labels include `fixed`, keyed by one label."""
        out: dict[str, float] = {}
        for (sample, labels), value in self.samples.items():
            found = dict(labels)
            if sample == name and value and all(found.get(k) == v for k, v in fixed.items()):
                out[found[label]] = value
        return out


async def scrape(session: Any, base_url: str, **headers: str) -> Scrape:
    """GET /metrics and parse it (an aiohttp session or test client)."""
    async with session.get(base_url + "/metrics", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain")
        return Scrape(await resp.text())
