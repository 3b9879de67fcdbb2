"""The model server's Prometheus metrics, in a registry of its own (never the global one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from adapter.client import PushClient, PushStats
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


class _PushCollector(Collector):
    """The push client's counts: in total, and per adapter replica (address) known now."""

    def __init__(self, client: Callable[[], PushClient | None]) -> None:
        self._client = client

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        client = self._client()
        totals = client.totals() if client else PushStats()
        family = CounterMetricFamily(
            "model_server_pushes",
            "Push attempts to the adapter replicas by result",
            labels=["result"],
        )
        for result, count in _results(totals):
            family.add_metric([result], count)
        yield family
        yield CounterMetricFamily(
            "model_server_push_dropped_requests",
            "Requests whose latencies were dropped undelivered: older than the backlog's max"
            " age, or meant for a replica that went away",
            value=totals.dropped_requests,
        )
        replicas = GaugeMetricFamily(
            "model_server_push_replicas",
            "Adapter replicas (addresses) each adapter URL resolves to now",
            labels=["adapter"],
        )
        per_replica = CounterMetricFamily(
            "model_server_replica_pushes",
            "Push attempts to each adapter replica by result",
            labels=["adapter", "address", "result"],
        )
        backlog = GaugeMetricFamily(
            "model_server_push_backlog_requests",
            "Requests recorded but not yet acknowledged by each adapter replica",
            labels=["adapter", "address"],
        )
        for adapter in client.adapters if client else ():
            replicas.add_metric([adapter.url], len(adapter.pushers))
            for address, pusher in adapter.pushers.items():
                for result, count in _results(pusher.stats):
                    per_replica.add_metric([adapter.url, address, result], count)
                backlog.add_metric([adapter.url, address], pusher.pending_requests)
        yield replicas
        yield per_replica
        yield backlog


def _results(stats: PushStats) -> list[tuple[str, int]]:
    return [
        ("delivered", stats.delivered),
        ("duplicate", stats.duplicates),
        ("failed", stats.failed_attempts),
        ("rejected", stats.rejected),
    ]


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
        self.registry.register(_PushCollector(push_client))
