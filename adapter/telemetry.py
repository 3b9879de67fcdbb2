"""The adapter's own Prometheus metrics, in a registry passed around, never the global one.

Every request counts and times itself, and every push is counted: those three metrics are plain
counters in dicts (``_RequestCounts``), turned into metric families only when ``/metrics`` is
scraped, because a ``prometheus_client`` child takes a lock and a method call per observation,
a real share of a push's own CPU. They are updated and read on the event loop's thread only.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


class _RequestCounts(Collector):
    """``adapter_requests_total{route, code}``, ``adapter_request_duration_seconds{route}`` and
    ``adapter_pushes_total{result, reason}`` as dicts of plain numbers (module docstring)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.durations: dict[str, tuple[list[int], list[float]]] = {}
        """route -> (count per bucket, not cumulative, the last one +Inf; [sum of seconds])."""
        self.pushes: dict[tuple[str, str], int] = {}
        self.reported_requests = 0

    def observe_request(self, route: str, code: int, seconds: float) -> None:
        key = (route, code)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.durations.get(route)
        if histogram is None:
            histogram = self.durations[route] = ([0] * (len(_LATENCY_BUCKETS) + 1), [0.0])
        histogram[0][bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1  # le: bound included
        histogram[1][0] += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "adapter_requests",
            "HTTP requests answered, by route and status code",
            labels=["route", "code"],
        )
        for (route, code), count in sorted(self.requests.items()):
            requests.add_metric([route, str(code)], count)
        yield requests
        durations = HistogramMetricFamily(
            "adapter_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            labels=["route"],
        )
        bounds = [*(floatToGoString(b) for b in _LATENCY_BUCKETS), "+Inf"]
        for route, (counts, total) in sorted(self.durations.items()):
            cumulative = list(itertools.accumulate(counts))
            durations.add_metric([route], list(zip(bounds, cumulative, strict=True)), total[0])
        yield durations
        pushes = CounterMetricFamily(
            "adapter_pushes",
            "Push reports received, by result (accepted, duplicate, rejected) and reason",
            labels=["result", "reason"],
        )
        for labels, count in sorted(self.pushes.items()):
            pushes.add_metric(list(labels), count)
        yield pushes
        yield CounterMetricFamily(
            "adapter_reported_requests",
            "Requests the pods completed, as the reports applied carry them (the latency"
            " sketches' counts; a report merged after a refusal counts once)",
            self.reported_requests,
        )


class PauseCounts(Protocol):
    """What ``adapter.garbage.Pauses`` counts, by generation."""

    counts: dict[int, list[int]]
    seconds: dict[int, float]
    longest: dict[int, float]
    cpu_seconds: dict[int, float]


class _PauseMetrics(Collector):
    def __init__(self, pauses: PauseCounts, buckets: tuple[float, ...]) -> None:
        self._pauses = pauses
        self._bounds = [*(floatToGoString(b) for b in buckets), "+Inf"]

    def collect(
        self,
    ) -> Iterator[HistogramMetricFamily | GaugeMetricFamily | CounterMetricFamily]:
        pauses = self._pauses
        histogram = HistogramMetricFamily(
            "adapter_gc_pause_seconds",
            "Pauses of Python's cyclic garbage collector, by generation collected",
            labels=["generation"],
        )
        longest = GaugeMetricFamily(
            "adapter_gc_pause_max_seconds",
            "The longest pause of the cyclic garbage collector since start, by generation",
            labels=["generation"],
        )
        cpu = CounterMetricFamily(
            "adapter_gc_cpu_seconds",
            "CPU time the cyclic garbage collector took, by generation",
            labels=["generation"],
        )
        for generation, counts in sorted(pauses.counts.items()):
            cumulative = list(itertools.accumulate(counts))
            histogram.add_metric(
                [str(generation)],
                list(zip(self._bounds, cumulative, strict=True)),
                pauses.seconds[generation],
            )
            longest.add_metric([str(generation)], pauses.longest[generation])
            cpu.add_metric([str(generation)], pauses.cpu_seconds[generation])
        yield histogram
        yield longest
        yield cpu


class ConnectionCounts(Protocol):
    """What ``adapter.serving.Connections`` counts (no import of the serving layer here)."""

    open: int
    refused: int
    write_timeouts: int
    receiving_dropped: int


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
        yield CounterMetricFamily(
            "adapter_connections_receiving_dropped",
            "Connections dropped because the bytes of requests received and not yet parsed"
            " (unfinished heads) passed their budget",
            connections.receiving_dropped,
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
        self._counts = _RequestCounts()
        self.registry.register(self._counts)
        self.observe_request = self._counts.observe_request
        """One answered request: ``adapter_requests_total`` and its duration."""
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
            " pod_rate: --max-pod-push-rate; pods_tracked: the pod limit; memory_budget: the"
            " memory budgets)",
            ["cause"],
            registry=self.registry,
        )
        self.registry.register(_TrackedPods(tracked_pods))
        self.registry.register(_PodData(pod_data_bytes, pod_data_budget_bytes))

    def track_pushes_in_flight(self, count: Callable[[], int]) -> None:
        """Export ``adapter_pushes_in_flight``, read from ``count`` at scrape time."""
        gauge = Gauge(
            "adapter_pushes_in_flight",
            "Pushes admitted and not yet answered",
            registry=self.registry,
        )
        gauge.set_function(count)

    def track_connections(self, connections: ConnectionCounts) -> None:
        """Export the connection counts of ``adapter.serving.Connections``, read at scrape time."""
        self.registry.register(_ConnectionMetrics(connections))

    def track_gc_pauses(self, pauses: PauseCounts, buckets: tuple[float, ...]) -> None:
        """Export ``adapter.garbage.Pauses`` (with its bucket bounds), read at scrape time."""
        self.registry.register(_PauseMetrics(pauses, buckets))

    def count_shed(self, cause: str) -> None:
        """One push refused to shed load: ``adapter_pushes_shed_total{cause}``."""
        self.shed.labels(cause).inc()

    def count_push(self, result: str, reason: str) -> None:
        """One push report: ``adapter_pushes_total{result, reason}``."""
        pushes = self._counts.pushes
        pushes[result, reason] = pushes.get((result, reason), 0) + 1

    def count_reported_requests(self, requests: int) -> None:
        """An applied report's requests: ``adapter_reported_requests_total``."""
        self._counts.reported_requests += requests
