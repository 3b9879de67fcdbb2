"""The adapter's own Prometheus metrics, in a registry passed around, never the global one.

Every request counts and times itself, so the labelled children of the per-request metrics are
looked up once per label set and kept (``labels()`` builds and checks its key on each call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_AGE_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class _TrackedPods(Collector):
    """Reads the store's size at scrape time, so the push path does no gauge bookkeeping."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "adapter_tracked_pods", "Pods the adapter holds data for", value=self._count()
        )


class _PodData(Collector):
    """The memory the tracked pods hold, and the budget of it, read at scrape time."""

    def __init__(self, held_bytes: Callable[[], int], budget_bytes: int | None) -> None:
        self._held_bytes = held_bytes
        self._budget_bytes = budget_bytes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "adapter_pod_data_bytes",
            "Memory the tracked pods' labels and latency windows hold (estimated)",
            value=self._held_bytes(),
        )
        if self._budget_bytes is not None:
            yield GaugeMetricFamily(
                "adapter_pod_data_budget_bytes",
                "The most memory the tracked pods may hold together (--store-memory-budget)",
                value=self._budget_bytes,
            )


class Telemetry:
    """Every metric the adapter exports about itself."""

    def __init__(
        self,
        tracked_pods: Callable[[], int],
        pod_data_bytes: Callable[[], int] = lambda: 0,
        pod_data_budget_bytes: int | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "adapter_requests",
            "HTTP requests answered, by route and status code",
            ["route", "code"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "adapter_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.pushes = Counter(
            "adapter_pushes",
            "Push reports received, by result (accepted, duplicate, rejected) and reason",
            ["result", "reason"],
            registry=self.registry,
        )
        self.clock_skew = Counter(
            "adapter_push_clock_skew",
            "Push reports whose timestamp differs from the adapter's clock by more than 5 minutes",
            registry=self.registry,
        )
        self.served_data_age = Histogram(
            "adapter_served_data_age_seconds",
            "Age of the oldest value in each metrics answer (time since its newest report)",
            buckets=_AGE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_TrackedPods(tracked_pods))
        self.registry.register(_PodData(pod_data_bytes, pod_data_budget_bytes))
        self._request_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self._push_children: dict[tuple[str, str], Counter] = {}

    def observe_request(self, route: str, code: int, seconds: float) -> None:
        """One answered request: ``adapter_requests_total`` and its duration."""
        children = self._request_children.get((route, code))
        if children is None:
            children = self._request_children[route, code] = (
                self.requests.labels(route, str(code)),
                self.request_seconds.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def count_push(self, result: str, reason: str) -> None:
        """One push report: ``adapter_pushes_total{result, reason}``."""
        child = self._push_children.get((result, reason))
        if child is None:
            child = self._push_children[result, reason] = self.pushes.labels(result, reason)
        child.inc()
