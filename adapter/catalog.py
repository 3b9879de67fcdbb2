"""The metric catalog: every metric the adapter serves, and what kind of number it is.

Gauges are the latest pushed value (aggregated by sum), rates count completed requests over the
window (sum), quantiles come from the latency sketches (aggregated by merging the sketches, so an
object's p99 is the pooled p99 of its pods, never an average of p99s). The required replicas
are a workload's, from the queueing model (``adapter.required_replicas``), asked for an SLO
(``adapter.slo``): served for Deployments, Services and as an external metric, not for a pod
or a namespace. Pure data, and the lookups with the 404 that every provider answers for a
metric it does not serve.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from adapter import errors, resources, selectors, slo
from adapter.report import CONCURRENCY, QUEUE_DEPTH

REQUIRED_REPLICAS = "inference_required_replicas"


class Kind(enum.Enum):
    """How a metric is computed from a pod's record."""

    GAUGE = "gauge"
    RATE = "rate"
    QUANTILE = "quantile"
    REQUIRED_REPLICAS = "required-replicas"


WORKLOADS = (resources.DEPLOYMENTS.group_resource, resources.SERVICES.group_resource)
"""The resources a workload-level metric (the required replicas) is served for."""


@dataclass(frozen=True)
class Metric:
    """One catalog entry (with the SLO it is asked for, once a query gave one)."""

    name: str
    kind: Kind
    help: str
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
    Metric(
        REQUIRED_REPLICAS,
        Kind.REQUIRED_REPLICAS,
        "replicas that meet the latency SLO of the metric label selector (slo=500ms,"
        " quantile=0.99) for the offered load, from a queueing model",
        group_resources=WORKLOADS,
    ),
)
BY_NAME = {metric.name: metric for metric in METRICS}
NAMES = tuple(metric.name for metric in METRICS)


def names_for(group_resource: str, names: Sequence[str] = NAMES) -> tuple[str, ...]:
    """Those of ``names`` served for ``group_resource``."""
    return tuple(name for name in names if BY_NAME[name].serves(group_resource))


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
    if entry is not None and metric in names and not entry.serves(group_resource):
        raise errors.not_found(
            f"the server could not find the metric {metric} for {group_resource}: it is a"
            f" workload's replica count, served for {' and '.join(entry.group_resources or ())}"
            " and as an external metric"
        )
    if entry is None or metric not in names:
        raise errors.not_found(
            f"the server could not find the metric {metric} for {group_resource};"
            f" the metrics for {group_resource} are {', '.join(names_for(group_resource, names))}"
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
