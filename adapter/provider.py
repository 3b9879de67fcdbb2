"""The provider seam: what the API layer asks for, and the values it gets back.

Shaped like ``CustomMetricsProvider`` / ``ExternalMetricsProvider`` of
kubernetes-sigs/custom-metrics-apiserver. The API layer (``adapter.api``) translates a request
into one of these calls and serializes the result; it never learns where numbers come from.
Providers raise ``adapter.errors.ApiError`` (mostly ``not_found`` with a diagnostic) and return
plain values otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple, Protocol

from adapter import selectors


@dataclass(frozen=True)
class CustomMetricInfo:
    """A metric on one resource: ``pods/inference_queue_depth``."""

    group_resource: str
    namespaced: bool
    metric: str

    def __str__(self) -> str:
        return f"{self.group_resource}/{self.metric}"


class ObjectReference(NamedTuple):
    """The described object of a metric value (a core ``ObjectReference``).

    The value types of answers are NamedTuples: a 1,000-pod answer makes 2,000 of them, and a
    NamedTuple is several times cheaper to build than a frozen dataclass.
    """

    kind: str
    api_version: str
    name: str
    namespace: str | None = None


class MetricValue(NamedTuple):
    """One custom metric value for one object."""

    described_object: ObjectReference
    metric: str
    value: float
    timestamp: float
    """Unix seconds of the newest report that contributed."""
    window_seconds: int | None = None
    """The span the value covers, or None for an instantaneous gauge."""
    metric_selector: selectors.Selector = selectors.EVERYTHING


class ExternalMetricValue(NamedTuple):
    """One series of an external metric."""

    metric: str
    value: float
    timestamp: float
    labels: Mapping[str, str] = MappingProxyType({})
    window_seconds: int | None = None


class CustomMetricsProvider(Protocol):
    """Answers the ``custom.metrics.k8s.io`` API."""

    def list_all_metrics(self) -> Sequence[CustomMetricInfo]:
        """Every (resource, metric) pair served; cheap, never raises, never empty."""
        ...

    async def get_metric_by_name(
        self,
        info: CustomMetricInfo,
        namespace: str | None,
        name: str,
        metric_selector: selectors.Selector,
    ) -> MetricValue:
        """The value for one object; ``namespace`` is None for root-scoped resources."""
        ...

    async def get_metric_by_selector(
        self,
        info: CustomMetricInfo,
        namespace: str | None,
        selector: selectors.Selector,
        metric_selector: selectors.Selector,
    ) -> list[MetricValue]:
        """One value per object matching ``selector``; an empty answer is a ``not_found``."""
        ...


class ExternalMetricsProvider(Protocol):
    """Answers the ``external.metrics.k8s.io`` API."""

    def list_all_external_metrics(self) -> Sequence[str]:
        """Every external metric name; cheap, never raises, never empty."""
        ...

    async def get_external_metric(
        self, namespace: str, metric: str, metric_selector: selectors.Selector
    ) -> list[ExternalMetricValue]:
        """The series of ``metric`` in ``namespace`` that ``metric_selector`` picks."""
        ...


class MetricsProvider(CustomMetricsProvider, ExternalMetricsProvider, Protocol):
    """A provider that answers both APIs, as ``StoreProvider`` does."""
