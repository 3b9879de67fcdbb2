"""Where each catalog metric comes from in Prometheus: series names and labels, as data.

A ``ServerSource`` says which gauges, which completed-requests counter and which latency
histogram a kind of model server exports, and ``adapter.prometheus.promql`` turns it into
queries; nothing in the query code names a metric. ``MODEL_SERVER`` describes this project's
own model server (``model_server/metrics.py``); presets for other servers (vLLM, Triton, ...)
are further ``ServerSource`` values of the same shape.

Pure data: no I/O, no aiohttp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from adapter import catalog
from adapter.report import CONCURRENCY, QUEUE_DEPTH


@dataclass(frozen=True)
class Series:
    """Prometheus series by metric name and fixed label values.

    >>> Series("inference_requests_total", {"outcome": "ok"}).name
    'inference_requests_total'
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Exact label values every selected series must have (e.g. ``{"outcome": "ok"}``)."""


@dataclass(frozen=True)
class Gauge:
    """A gauge metric: the sum of one or more gauge series per pod (vLLM's concurrency is
    waiting + running)."""

    series: tuple[Series, ...]

    @property
    def freshness(self) -> Series:
        """The series whose newest sample dates a pod's data."""
        return self.series[0]


@dataclass(frozen=True)
class Counter:
    """A monotonic counter of completed requests; its rate is requests per second."""

    series: Series

    @property
    def freshness(self) -> Series:
        return self.series


@dataclass(frozen=True)
class Histogram:
    """A latency histogram in seconds (``<name>_bucket`` with ``le``, ``<name>_count``)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def buckets(self) -> Series:
        return Series(f"{self.name}_bucket", self.labels)

    @property
    def freshness(self) -> Series:
        return Series(f"{self.name}_count", self.labels)


Source = Gauge | Counter | Histogram


@dataclass(frozen=True)
class ServerSource:
    """What one kind of model server exports, for every catalog metric it can serve."""

    gauges: Mapping[str, Gauge]
    """Catalog gauge name -> its source."""
    requests: Counter | None = None
    """Completed requests (the rate metric)."""
    latency: Histogram | None = None
    """End-to-end latency (every quantile metric)."""

    def source_of(self, metric: catalog.Metric) -> Source | None:
        """Where ``metric`` comes from, or None when this server does not export it."""
        if metric.kind is catalog.Kind.GAUGE:
            return self.gauges.get(metric.name)
        if metric.kind is catalog.Kind.RATE:
            return self.requests
        if metric.kind is catalog.Kind.REQUIRED_REPLICAS:
            return None  # see provider.UNSERVED
        return self.latency

    def served(self) -> tuple[str, ...]:
        """The catalog names this server has a source for, in catalog order."""
        return tuple(m.name for m in catalog.METRICS if self.source_of(m) is not None)


_LATENCY = Histogram("inference_request_duration_seconds")

MODEL_SERVER = ServerSource(
    gauges=MappingProxyType(
        {
            QUEUE_DEPTH: Gauge((Series("inference_queue_depth"),)),
            CONCURRENCY: Gauge((Series("inference_concurrency"),)),
        }
    ),
    requests=Counter(_LATENCY.freshness),
    latency=_LATENCY,
)
"""This project's model server (``model_server/metrics.py``): its queue gauges and its
end-to-end latency histogram, whose ``_count`` counts the completed requests."""


@dataclass(frozen=True)
class SeriesLabels:
    """The target labels that place a series: which pod, which namespace, which Deployment."""

    pod: str = "pod"
    namespace: str = "namespace"
    deployment: str = "deployment"
    """Standalone only: the label naming the pod's Deployment (cluster mode asks the view)."""
