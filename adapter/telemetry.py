"""The adapter's own Prometheus metrics, in a registry passed around, never the global one.

Every request counts and times itself, so the labelled children of the per-request metrics are
looked up once per label set and kept (``labels()`` builds and checks its key on each call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
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


class ConnectionCounts(Protocol):
    """What ``adapter.serving.Connections`` counts (no import of the serving layer here)."""

    open: int
    refused: int
    write_timeouts: int


class _ConnectionMetrics(Collector):
    def __init__(self, connections: ConnectionCounts) -> None:
        self._connections = connections

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        connections = self._connections
        yield GaugeMetricFamily(
            "adapter_connections", "Open connections (--max-connections)", connections.open
        )
        yield CounterMetricFamily(
            "adapter_connections_refused",
            "Connections closed at once because --max-connections were open",
            connections.refused,
        )
        yield CounterMetricFamily(
            "adapter_connections_write_timeouts",
            "Connections dropped because an answer was not written out within --write-timeout",
            connections.write_timeouts,
        )


class Telemetry:
    """Every metric the adapter exports about itself."""

    def __init__(self, tracked_pods: Callable[[], int]) -> None:
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
        self.shed = Counter(
            "adapter_pushes_shed",
            "Pushes refused with 429 to shed load, by cause (in_flight: --max-inflight-pushes;"
            " pod_rate: --max-pod-push-rate; pods_tracked: the pod limit)",
            ["cause"],
            registry=self.registry,
        )
        self.registry.register(_TrackedPods(tracked_pods))
        self._request_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self._push_children: dict[tuple[str, str], Counter] = {}

    def track_pushes_in_flight(self, count: Callable[[], int]) -> None:
        """Export ``adapter_pushes_in_flight``, read from ``count`` at scrape time."""
        gauge = Gauge(
            "adapter_pushes_in_flight",
            "Pushes admitted and not yet answered",
            registry=self.registry,
        )
        gauge.set_function(count)

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

    def track_connections(self, connections: ConnectionCounts) -> None:
        """Export the connection counts of ``adapter.serving.Connections``, read at scrape time."""
        self.registry.register(_ConnectionMetrics(connections))

    def count_shed(self, cause: str) -> None:
        """One push refused to shed load: ``adapter_pushes_shed_total{cause}``."""
        self.shed.labels(cause).inc()

    def count_push(self, result: str, reason: str) -> None:
        """One push report: ``adapter_pushes_total{result, reason}``."""
        child = self._push_children.get((result, reason))
        if child is None:
            child = self._push_children[result, reason] = self.pushes.labels(result, reason)
        child.inc()
