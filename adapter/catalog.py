"""The metric catalog: every metric the adapter serves, what it is computed from, and how an
object's value is made from its pods'.

Each metric reads one *signal* of a pod, the vocabulary that presets (what a real server
exports), push reports (what a pod sends) and providers share: a gauge, the completed
requests, the end-to-end latency sketch, its exact mean, the time-to-first-token sketch. Gauges
are the latest pushed value; rates count completed requests over the window; quantiles come from
sketches, aggregated by merging them (an object's p99 is the pooled p99 of its pods, never an
average of p99s); the mean latency pools sums and counts. A fraction (KV-cache utilization) is
never summed: its aggregate is the mean over pods, and a ``_max`` variant the maximum.

Pure data, and the lookups with the 404 that every provider answers for a metric it does not
serve.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from adapter import errors, resources
from adapter.report import (
    CONCURRENCY,
    KV_CACHE_UTILIZATION,
    LATENCY,
    QUEUE_DEPTH,
    TIME_TO_FIRST_TOKEN,
)


class Kind(enum.Enum):
    """How a metric is computed from a pod's record."""

    GAUGE = "gauge"
    RATE = "rate"
    QUANTILE = "quantile"
    MEAN = "mean"


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


GAUGE_SIGNALS = frozenset((Signal.QUEUE_DEPTH, Signal.CONCURRENCY, Signal.KV_CACHE_UTILIZATION))
SKETCH_SIGNALS = frozenset((Signal.LATENCY, Signal.TIME_TO_FIRST_TOKEN))
"""The signals that are sketches (``Kind.QUANTILE`` metrics read them)."""


@dataclass(frozen=True)
class Metric:
    """One catalog entry."""

    name: str
    kind: Kind
    signal: Signal
    help: str
    aggregate: Aggregate = Aggregate.SUM
    quantile: float = 0.0
    """For QUANTILE metrics: which quantile, in (0, 1)."""

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
)
BY_NAME = {metric.name: metric for metric in METRICS}
NAMES = tuple(metric.name for metric in METRICS)

NO_REASONS: Mapping[str, str] = MappingProxyType({})


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
    if entry is None or metric not in names:
        raise errors.not_found(
            f"the server could not find the metric {metric} for {group_resource}"
            + _why_not(metric, unserved)
            + f"; the metrics for {group_resource} are {', '.join(names)}"
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
