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
from typing import NamedTuple, Protocol, overload

import numpy as np
from numpy.typing import NDArray

from adapter import selectors
from adapter.resources import PodRef


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


def pod_reference(pod: PodRef) -> ObjectReference:
    """The described object of a pod's value."""
    return ObjectReference("Pod", "v1", pod.name, pod.namespace)


class PodValues(Sequence[MetricValue]):
    """One metric's values for many pods, held as columns: what a pod selector answers.

    A 1,000-pod answer built as 1,000 ``MetricValue``s (and their references) cost as much as
    computing the values; held column-wise, ``adapter.api`` writes them out directly. As a
    sequence it yields ``MetricValue``s, built on demand, for every other reader.
    """

    __slots__ = ("metric", "metric_selector", "pods", "timestamps", "values", "window_seconds")

    def __init__(
        self,
        metric: str,
        pods: Sequence[PodRef],
        values: Sequence[float] | NDArray[np.float64],
        timestamps: Sequence[float],
        window_seconds: int | None = None,
        metric_selector: selectors.Selector = selectors.EVERYTHING,
    ) -> None:
        if not len(pods) == len(values) == len(timestamps):
            raise ValueError("pods, values and timestamps must have the same length")
        self.metric = metric
        self.pods = pods
        self.values = values
        self.timestamps = timestamps
        """Unix seconds of each pod's newest report."""
        self.window_seconds = window_seconds
        self.metric_selector = metric_selector

    def __len__(self) -> int:
        return len(self.pods)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same ``MetricValue``s, as the list it stands for."""
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable columns, as a list

    def __repr__(self) -> str:
        return f"PodValues({self.metric!r}, {len(self)} pods)"

    @overload
    def __getitem__(self, index: int) -> MetricValue: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[MetricValue]: ...

    def __getitem__(self, index: int | slice) -> MetricValue | Sequence[MetricValue]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return MetricValue(
            pod_reference(self.pods[index]),
            self.metric,
            float(self.values[index]),
            self.timestamps[index],
            self.window_seconds,
            self.metric_selector,
        )


def timestamps_of(values: Sequence[MetricValue]) -> Sequence[float]:
    """The timestamp of each value (a ``PodValues`` has them as a column already)."""
    if isinstance(values, PodValues):
        return values.timestamps
    return [value.timestamp for value in values]


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
    ) -> Sequence[MetricValue]:
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
