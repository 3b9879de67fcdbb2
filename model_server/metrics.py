"""The model server's Prometheus metrics, in a registry of its own (never the global one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from adapter.client import PushClient
from adapter.client.telemetry import PushCollector
from model_server.scheduler import Scheduler

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)  # fmt: skip
OUTCOMES = ("ok", "shed", "draining", "not_ready", "bad_request", "error")


class _SchedulerCollector(Collector):
    """Gauges and totals read from the scheduler at scrape time."""

    def __init__(self, scheduler: Callable[[], Scheduler | None]) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        scheduler = self._scheduler()
        depth = scheduler.queue_depth if scheduler else 0
        concurrency = scheduler.concurrency if scheduler else 0
        held = scheduler.stats.held_seconds if scheduler else 0.0
        yield GaugeMetricFamily(
            "inference_queue_depth", "Requests waiting for a worker slot", value=depth
        )
        yield GaugeMetricFamily(
            "inference_concurrency", "Requests waiting plus requests in a slot", value=concurrency
        )
        yield CounterMetricFamily(
            "model_server_slot_held_seconds",
            "Total time worker slots were held by batches",
            value=held,
        )


class ServerMetrics:
    """Every metric the model server exports."""

    def __init__(
        self,
        scheduler: Callable[[], Scheduler | None],
        push_client: Callable[[], PushClient | None],
    ) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "inference_request_duration_seconds",
            "End-to-end latency of served requests, arrival to response",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "inference_requests",
            "Inference requests by outcome",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.requests.labels(outcome)
        self.batch_size = Histogram(
            "inference_batch_size",
            "Requests per served batch",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.service_time_drawn = Counter(
            "model_server_service_time_drawn_seconds",
            "Total service time drawn in simulated mode",
            registry=self.registry,
        )
        self.registry.register(_SchedulerCollector(scheduler))
        self.registry.register(PushCollector(push_client, "model_server"))
