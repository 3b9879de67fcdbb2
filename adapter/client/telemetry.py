"""The push client's own metrics, for the ``/metrics`` of whoever embeds it (a model server, the
relay), in the embedder's registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from adapter.client.pusher import PushClient, PushStats


class PushCollector(Collector):
    """The push client's counts: in total, and per adapter replica (address) known now, named
    ``<prefix>_pushes_total`` and so on."""

    def __init__(self, client: Callable[[], PushClient | None], prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        client = self._client()
        totals = client.totals() if client else PushStats()
        family = CounterMetricFamily(
            f"{self._prefix}_pushes",
            "Push attempts to the adapter replicas by result",
            labels=["result"],
        )
        for result, count in _results(totals):
            family.add_metric([result], count)
        yield family
        yield CounterMetricFamily(
            f"{self._prefix}_push_dropped_requests",
            "Requests whose latencies were dropped undelivered: older than the backlog's max"
            " age, or meant for a replica that went away",
            value=totals.dropped_requests,
        )
        replicas = GaugeMetricFamily(
            f"{self._prefix}_push_replicas",
            "Adapter replicas (addresses) each adapter URL resolves to now",
            labels=["adapter"],
        )
        per_replica = CounterMetricFamily(
            f"{self._prefix}_replica_pushes",
            "Push attempts to each adapter replica by result",
            labels=["adapter", "address", "result"],
        )
        backlog = GaugeMetricFamily(
            f"{self._prefix}_push_backlog_requests",
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
