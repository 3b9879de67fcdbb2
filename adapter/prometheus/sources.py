"""Where each catalog signal comes from in a server's Prometheus metrics: series, as data.

A ``Preset`` says, for every ``catalog.Signal``, which series of one kind of model server carry
it (a gauge or a sum of gauges, a counter, a histogram with its unit, a counter pair that gives
only a mean) or why the server has none. ``adapter.prometheus.presets`` holds the table (vLLM,
Triton, ...); ``adapter.prometheus.promql`` turns an entry into PromQL and the relay
(``adapter.client.reading``) reads the same entry from a scrape, so nothing in either names a
metric.

Series are named as exposed, which is how Prometheus stores them: ``vllm:request_success_total``
(prometheus_client adds ``_total``), ``tgi_request_success`` (TGI's exporter does not).

Pure data: no I/O, no aiohttp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from adapter import catalog
from adapter.catalog import Signal


def _no_labels() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Series:
    """Prometheus series by exposed name and fixed label values.

    >>> Series("tgi_request_failure", {"err": "overloaded"}).name
    'tgi_request_failure'
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=_no_labels)
    """Exact label values every selected series must have (e.g. ``{"outcome": "ok"}``)."""

    def created(self) -> str:
        """The name of the ``_created`` series prometheus_client writes beside a counter or a
        histogram: a new value marks a restart even when the counts did not go down."""
        for suffix in ("_total", "_bucket", "_count", "_sum"):
            if self.name.endswith(suffix):
                return self.name.removesuffix(suffix) + "_created"
        return self.name + "_created"


@dataclass(frozen=True)
class Gauge:
    """A gauge signal: the sum of one or more gauge families per pod (concurrency is waiting +
    running). Within a family, the series of one pod (vLLM's data-parallel engines, Triton's
    models) are summed, or averaged for a fraction."""

    series: tuple[Series, ...]
    within_pod: Literal["sum", "mean"] = "sum"
    requires: str = ""
    """What the server needs to export it (a flag), when not exported by default."""

    @property
    def freshness(self) -> Series:
        """The series whose newest sample dates a pod's data."""
        return self.series[0]


@dataclass(frozen=True)
class Counter:
    """A monotonic counter of requests, or the sum of several (successes + failures)."""

    series: tuple[Series, ...]
    requires: str = ""

    @property
    def freshness(self) -> Series:
        return self.series[0]


@dataclass(frozen=True)
class Histogram:
    """A latency histogram (``<name>_bucket`` with ``le``, ``_sum``, ``_count``) whose bounds are
    in ``unit_seconds`` (1e-3 for milliseconds)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=_no_labels)
    unit_seconds: float = 1.0
    requires: str = ""

    @property
    def buckets(self) -> Series:
        return Series(f"{self.name}_bucket", self.labels)

    @property
    def count(self) -> Series:
        return Series(f"{self.name}_count", self.labels)

    @property
    def total(self) -> Series:
        return Series(f"{self.name}_sum", self.labels)

    @property
    def freshness(self) -> Series:
        return self.count

    def mean(self) -> Mean:
        """The histogram's exact mean: ``_sum`` over ``_count``."""
        return Mean(self.total, Counter((self.count,)), self.unit_seconds, self.requires)


@dataclass(frozen=True)
class Mean:
    """A mean latency from two counters: cumulative time (in ``unit_seconds``) over the requests
    it covers. Only ever served as a mean (``inference_latency_mean_seconds``)."""

    total: Series
    count: Counter
    unit_seconds: float = 1.0
    requires: str = ""

    @property
    def freshness(self) -> Series:
        return self.count.freshness


Source = Gauge | Counter | Histogram | Mean


@dataclass(frozen=True)
class Citation:
    """A file read at the server's source to confirm a preset's entries."""

    repo: str
    path: str
    version: str
    facts: str


@dataclass(frozen=True)
class Preset:
    """What one kind of model server exports, signal by signal, and where that was read.

    Every signal is either in ``inputs`` or in ``lacks`` with the reason, so a metric the
    server cannot give is a 404 that says why, never a zero (but for
    ``catalog.PUSH_ONLY_SIGNALS``, which no server exports).
    """

    name: str
    title: str
    enable: str
    """What turns the server's metrics on."""
    inputs: Mapping[Signal, Source]
    lacks: Mapping[Signal, str]
    """Why the server cannot give a signal (what it lacks)."""
    citations: tuple[Citation, ...] = ()
    notes: Mapping[Signal, str] = field(default_factory=lambda: MappingProxyType({}))
    """What a served signal means on this server where it differs from the catalog's words."""

    def __post_init__(self) -> None:
        both = set(self.inputs) & set(self.lacks)
        neither = set(Signal) - catalog.PUSH_ONLY_SIGNALS - set(self.inputs) - set(self.lacks)
        if both or neither:
            raise ValueError(
                f"preset {self.name}: every signal is either an input or lacking, exactly once"
                f" (both: {sorted(s.value for s in both)}, neither:"
                f" {sorted(s.value for s in neither)})"
            )
        for signal, source in self.inputs.items():
            if not isinstance(source, _KINDS[signal]):
                raise ValueError(f"preset {self.name}: {signal.value} cannot come from {source}")

    def source_of(self, metric: catalog.Metric) -> Source | None:
        """Where ``metric`` comes from, or None when this server does not export it."""
        return self.inputs.get(metric.signal)

    def served(self) -> tuple[str, ...]:
        """The catalog names this server has a source for, in catalog order."""
        return tuple(m.name for m in catalog.METRICS if m.signal in self.inputs)

    def unserved(self) -> Mapping[str, str]:
        """Each catalog metric this server cannot give, with the reason (for the 404)."""
        return {
            m.name: f"the {self.name} preset has no {m.signal.value}: {self.lacks[m.signal]}"
            for m in catalog.METRICS
            if m.signal in self.lacks
        }


_KINDS: Mapping[Signal, type | tuple[type, ...]] = MappingProxyType(
    {
        Signal.QUEUE_DEPTH: Gauge,
        Signal.CONCURRENCY: Gauge,
        Signal.KV_CACHE_UTILIZATION: Gauge,
        Signal.REQUESTS: Counter,
        Signal.LATENCY: Histogram,
        Signal.LATENCY_MEAN: Mean,
        Signal.TIME_TO_FIRST_TOKEN: Histogram,
    }
)


@dataclass(frozen=True)
class SeriesLabels:
    """The target labels that place a series: which pod, which namespace, which Deployment."""

    pod: str = "pod"
    namespace: str = "namespace"
    deployment: str = "deployment"
    """Standalone only: the label naming the pod's Deployment (cluster mode asks the view)."""
