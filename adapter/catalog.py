"""The metric catalog: every metric the adapter serves, what it is computed from, and how an
object's value is made from its pods'.

Each metric reads one *signal* of a pod, the vocabulary that presets (what a real server
exports), push reports (what a pod sends) and providers share: a gauge, the completed
requests, the end-to-end latency sketch, its exact mean, the time-to-first-token sketch. Gauges
are the latest pushed value; rates count completed requests over the window; quantiles come from
sketches, aggregated by merging them (an object's p99 is the pooled p99 of its pods, never an
average of p99s); the mean latency pools sums and counts. A fraction (KV-cache utilization) is
never summed: its aggregate is the mean over pods, and a ``_max`` variant the maximum.

The required replicas are a workload's, from the queueing model (``adapter.required_replicas``)
over the service-time sketch and the worker slots, asked for an SLO (``adapter.slo``): served
for Deployments, Services and as an external metric, not for a pod or a namespace.

Pure data, and the lookups with the 404 that every provider answers for a metric it does not
serve.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from adapter import errors, resources, selectors, slo
from adapter.report import (
    CONCURRENCY,
    KV_CACHE_UTILIZATION,
    LATENCY,
    QUEUE_DEPTH,
    SERVICE_TIME,
    TIME_TO_FIRST_TOKEN,
)

REQUIRED_REPLICAS = "inference_required_replicas"


class Kind(enum.Enum):
    """How a metric is computed from a pod's record."""

    GAUGE = "gauge"
    RATE = "rate"
    QUANTILE = "quantile"
    MEAN = "mean"
    REQUIRED_REPLICAS = "required-replicas"


class Aggregate(enum.Enum):
    """How an object's (or an external series') value is made from its pods' values."""

    SUM = "sum"
    MEAN = "mean"
    """The mean of the pods' values (a fraction: each pod counts once)."""
    MAX = "max"
    POOLED = "pooled"
    """From the pods' observations pooled: merged sketches, or summed sums over summed counts."""


class Signal(enum.Enum):
    """What a pod reports that a metric reads. The value is the name used on the wire (a gauge's
    name, or the report field) and in presets."""

    QUEUE_DEPTH = QUEUE_DEPTH
    CONCURRENCY = CONCURRENCY
    KV_CACHE_UTILIZATION = KV_CACHE_UTILIZATION
    REQUESTS = "requests"
    """Completed requests (a count per report)."""
    LATENCY = LATENCY
    """End-to-end latencies (a sketch)."""
    LATENCY_MEAN = "latency_mean"
    """The sum and count of end-to-end latencies: a mean, never a quantile."""
    TIME_TO_FIRST_TOKEN = TIME_TO_FIRST_TOKEN
    """Time from arrival to the first output token (a sketch)."""
    SERVICE_TIME = SERVICE_TIME
    """How long each request held a worker slot (a sketch; the required replicas read it, with
    the gauge ``inference_worker_slots``)."""


GAUGE_SIGNALS = frozenset((Signal.QUEUE_DEPTH, Signal.CONCURRENCY, Signal.KV_CACHE_UTILIZATION))
SKETCH_SIGNALS = frozenset((Signal.LATENCY, Signal.TIME_TO_FIRST_TOKEN, Signal.SERVICE_TIME))
"""The signals that are sketches (``Kind.QUANTILE`` metrics and the required replicas read them)."""
PUSH_ONLY_SIGNALS = frozenset((Signal.SERVICE_TIME,))
"""Signals only a pod's own pushes carry: no server's Prometheus metrics give them, so presets
neither read nor lack them (the Prometheus provider says why in its 404)."""

WORKLOADS = (resources.DEPLOYMENTS.group_resource, resources.SERVICES.group_resource)
"""The resources a workload-level metric (the required replicas) is served for."""


@dataclass(frozen=True)
class Metric:
    """One catalog entry (with the SLO it is asked for, once a query gave one)."""

    name: str
    kind: Kind
    signal: Signal
    help: str
    aggregate: Aggregate = Aggregate.SUM
    quantile: float = 0.0
    """For QUANTILE metrics: which quantile, in (0, 1)."""
    group_resources: tuple[str, ...] | None = None
    """The only resources it is served for; None: every one the provider serves."""
    slo: slo.Slo | None = None
    """For REQUIRED_REPLICAS: the SLO of the query (``asked``)."""

    def asked(self, metric_selector: selectors.Selector) -> Metric:
        """This entry as a query with ``metric_selector`` asks for it: with its SLO for the
        required replicas (a 400 naming the label if the selector's SLO is invalid)."""
        if self.kind is not Kind.REQUIRED_REPLICAS:
            return self
        asked, _ = slo.split(metric_selector, self.name)
        return dataclasses.replace(self, slo=asked)

    def series_selector(self, metric_selector: selectors.Selector) -> selectors.Selector:
        """The part of a query's metric label selector that picks series: all of it, but
        for the SLO labels of the required replicas."""
        if self.kind is not Kind.REQUIRED_REPLICAS:
            return metric_selector
        return slo.series_selector(metric_selector)

    def serves(self, group_resource: str) -> bool:
        """Whether this metric is served for ``group_resource``."""
        return self.group_resources is None or group_resource in self.group_resources

    @property
    def windowed(self) -> bool:
        """Whether the value covers the window (and so reports a window), rather than an instant."""
        return self.kind is not Kind.GAUGE


def _quantiles(signal: Signal, stem: str, what: str) -> tuple[Metric, ...]:
    return tuple(
        Metric(
            f"{stem}_p{percent}_seconds",
            Kind.QUANTILE,
            signal,
            f"{percent}th percentile of {what} over the window, in seconds",
            Aggregate.POOLED,
            percent / 100,
        )
        for percent in (50, 90, 95, 99)
    )


KV_CACHE_HELP = "KV-cache utilization, 0 to 1 (a pod with several engines: their mean)"

METRICS: tuple[Metric, ...] = (
    Metric(
        QUEUE_DEPTH, Kind.GAUGE, Signal.QUEUE_DEPTH, "requests waiting, not yet in a worker slot"
    ),
    Metric(
        CONCURRENCY, Kind.GAUGE, Signal.CONCURRENCY, "requests waiting plus requests in service"
    ),
    Metric(
        "inference_requests_per_second",
        Kind.RATE,
        Signal.REQUESTS,
        "completed requests per second over the window",
    ),
    *_quantiles(Signal.LATENCY, "inference_latency", "end-to-end request latency"),
    Metric(
        "inference_latency_mean_seconds",
        Kind.MEAN,
        Signal.LATENCY_MEAN,
        "mean end-to-end request latency over the window, in seconds (a mean, not a quantile)",
        Aggregate.POOLED,
    ),
    *_quantiles(Signal.TIME_TO_FIRST_TOKEN, "inference_time_to_first_token", "time to first token"),
    Metric(
        Signal.KV_CACHE_UTILIZATION.value,
        Kind.GAUGE,
        Signal.KV_CACHE_UTILIZATION,
        KV_CACHE_HELP + "; aggregated by the mean over pods",
        Aggregate.MEAN,
    ),
    Metric(
        Signal.KV_CACHE_UTILIZATION.value + "_max",
        Kind.GAUGE,
        Signal.KV_CACHE_UTILIZATION,
        KV_CACHE_HELP + "; aggregated by the maximum over pods",
        Aggregate.MAX,
    ),
    Metric(
        REQUIRED_REPLICAS,
        Kind.REQUIRED_REPLICAS,
        Signal.SERVICE_TIME,
        "replicas that meet the latency SLO of the metric label selector (slo=500ms,"
        " quantile=0.99) for the offered load, from a queueing model",
        group_resources=WORKLOADS,
    ),
)
BY_NAME = {metric.name: metric for metric in METRICS}
NAMES = tuple(metric.name for metric in METRICS)

NO_REASONS: Mapping[str, str] = MappingProxyType({})


def names_for(group_resource: str, names: Sequence[str] = NAMES) -> tuple[str, ...]:
    """Those of ``names`` served for ``group_resource``."""
    return tuple(name for name in names if BY_NAME[name].serves(group_resource))


def resolve(
    group_resource: str,
    metric: str,
    served: Sequence[str],
    names: Sequence[str] = NAMES,
    unserved: Mapping[str, str] = NO_REASONS,
) -> Metric:
    """The entry a provider computes for ``metric`` on ``group_resource``, or the 404 that says
    what is served instead: ``served`` group-resources, ``names`` metrics (a provider may serve
    fewer than the catalog). ``unserved`` explains catalog metrics left out of ``names`` (a
    preset whose server lacks them): their 404 gives that reason."""
    if group_resource == resources.SERVICES.group_resource and group_resource not in served:
        raise errors.not_found(
            f"the server could not find the metric {metric} for services: services"
            " need the cluster view (in-cluster mode) to know their pods; standalone, use"
            " pods, deployments.apps or namespaces"
        )
    if group_resource not in served:
        raise errors.not_found(
            f"the server could not find the metric {metric} for {group_resource};"
            f" metrics are served for {', '.join(sorted(served))}"
        )
    entry = BY_NAME.get(metric)
    if entry is not None and metric in names and not entry.serves(group_resource):
        raise errors.not_found(
            f"the server could not find the metric {metric} for {group_resource}: it is a"
            f" workload's replica count, served for {' and '.join(entry.group_resources or ())}"
            " and as an external metric"
        )
    if entry is None or metric not in names:
        raise errors.not_found(
            f"the server could not find the metric {metric} for {group_resource}"
            + _why_not(metric, unserved)
            + f"; the metrics for {group_resource} are"
            f" {', '.join(names_for(group_resource, names))}"
        )
    return entry


def resolve_external(
    metric: str, names: Sequence[str] = NAMES, unserved: Mapping[str, str] = NO_REASONS
) -> Metric:
    """The entry for an external metric, or the 404 that lists the external metrics."""
    entry = BY_NAME.get(metric)
    if entry is None or metric not in names:
        raise errors.not_found(
            f"the server could not find the external metric {metric}"
            + _why_not(metric, unserved)
            + f"; the external metrics are {', '.join(names)}"
        )
    return entry


def _why_not(metric: str, unserved: Mapping[str, str]) -> str:
    reason = unserved.get(metric)
    return f": {reason}" if reason else ""
