"""The metric catalog: every metric the adapter serves, and what kind of number it is.

Gauges are the latest pushed value (aggregated by sum), rates count completed requests over the
window (sum), quantiles come from the latency sketches (aggregated by merging the sketches, so an
object's p99 is the pooled p99 of its pods, never an average of p99s). Pure data, and the
lookups with the 404 that every provider answers for a metric it does not serve.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from adapter import errors, resources
from adapter.report import CONCURRENCY, QUEUE_DEPTH


class Kind(enum.Enum):
    """How a metric is computed from a pod's record."""

    GAUGE = "gauge"
    RATE = "rate"
    QUANTILE = "quantile"


@dataclass(frozen=True)
class Metric:
    """One catalog entry."""

    name: str
    kind: Kind
    help: str
    quantile: float = 0.0
    """For QUANTILE metrics: which quantile, in (0, 1)."""

    @property
    def windowed(self) -> bool:
        """Whether the value covers the window (and so reports a window), rather than an instant."""
        return self.kind is not Kind.GAUGE


def _latency(percent: int) -> Metric:
    return Metric(
        f"inference_latency_p{percent}_seconds",
        Kind.QUANTILE,
        f"{percent}th percentile of end-to-end request latency over the window, in seconds",
        percent / 100,
    )


METRICS: tuple[Metric, ...] = (
    Metric(QUEUE_DEPTH, Kind.GAUGE, "requests waiting, not yet in a worker slot"),
    Metric(CONCURRENCY, Kind.GAUGE, "requests waiting plus requests in service"),
    Metric(
        "inference_requests_per_second",
        Kind.RATE,
        "completed requests per second over the window",
    ),
    _latency(50),
    _latency(90),
    _latency(95),
    _latency(99),
)
BY_NAME = {metric.name: metric for metric in METRICS}
NAMES = tuple(metric.name for metric in METRICS)


def resolve(
    group_resource: str, metric: str, served: Sequence[str], names: Sequence[str] = NAMES
) -> Metric:
    """The entry a provider computes for ``metric`` on ``group_resource``, or the 404 that says
    what is served instead: ``served`` group-resources, ``names`` metrics (a provider may serve
    fewer than the catalog)."""
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
            f"the server could not find the metric {metric} for {group_resource};"
            f" the metrics for {group_resource} are {', '.join(names)}"
        )
    return entry


def resolve_external(metric: str, names: Sequence[str] = NAMES) -> Metric:
    """The entry for an external metric, or the 404 that lists the external metrics."""
    entry = BY_NAME.get(metric)
    if entry is None or metric not in names:
        raise errors.not_found(
            f"the server could not find the external metric {metric};"
            f" the external metrics are {', '.join(names)}"
        )
    return entry
