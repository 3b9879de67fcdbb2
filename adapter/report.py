"""One pod's push report, decoded and validated: the value that crosses from ``push`` to ``store``.

Pure data. ``adapter.push`` builds it from the wire; ``adapter.store`` applies it;
``adapter.client`` encodes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from adapter.resources import PodRef

QUEUE_DEPTH = "inference_queue_depth"
CONCURRENCY = "inference_concurrency"
KV_CACHE_UTILIZATION = "inference_kv_cache_utilization"
"""A fraction, 0 to 1 (a pod with several engines reports their mean)."""
WORKER_SLOTS = "inference_worker_slots"
"""Requests a pod serves at once (its worker slots, or a batching server's batch seats)."""
REQUESTS_SHED = "inference_requests_shed_total"
"""Requests a pod refused because its queue was full, since it started: a counter."""
GAUGE_NAMES = (QUEUE_DEPTH, CONCURRENCY, KV_CACHE_UTILIZATION, WORKER_SLOTS, REQUESTS_SHED)
"""The gauges a report may carry."""
FRACTIONS = frozenset({KV_CACHE_UTILIZATION})
"""Gauges that are fractions (at most 1)."""

LATENCY = "latency"
TIME_TO_FIRST_TOKEN = "time_to_first_token"  # noqa: S105 - a field name, not a secret
SERVICE_TIME = "service_time"
"""How long each request held a worker slot (for the required-replicas model, issue 16)."""
SKETCH_NAMES = (LATENCY, TIME_TO_FIRST_TOKEN, SERVICE_TIME)
"""The sketches a report may carry, by field name."""
SIGNAL_NAMES = (*GAUGE_NAMES, "requests", "latency_mean", *SKETCH_NAMES)
"""What a report's ``source.missing`` may say a server lacks."""


@dataclass(frozen=True)
class Owner:
    """The workload that owns the pod (its Deployment, as the push contract names it)."""

    kind: str
    name: str


class Sketch(NamedTuple):
    """One sketch of a report: DDSketch bins (index -> count) at the contract's relative
    accuracy, the values below the smallest bin, and how many counts each request makes (1,
    or a power of two up to 1024 for a relay that spreads a histogram's buckets)."""

    bins: Mapping[int, int]
    zero_count: int = 0
    counts_per_request: int = 1

    @property
    def count(self) -> int:
        return self.zero_count + sum(self.bins.values())


@dataclass(frozen=True)
class Source:
    """Where a report's numbers come from, when a relay read them from a server: the preset,
    what the server lacks (signal name -> why) and the histogram bounds (seconds) each sketch
    was spread from. The adapter names them in the 404 of a metric the pod cannot give."""

    preset: str
    missing: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    buckets: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def as_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"preset": self.preset}
        if self.missing:
            wire["missing"] = dict(self.missing)
        if self.buckets:
            wire["buckets"] = {name: list(bounds) for name, bounds in self.buckets.items()}
        return wire


class Report(NamedTuple):
    """A validated report: gauges now, latencies of the requests completed since the last one.

    A NamedTuple, as ``PodRef``: one is built per push, and a frozen dataclass costs several
    times more to build. Its mappings are never changed after decoding.
    """

    pod: PodRef
    uid: str
    seq: int
    labels: Mapping[str, str] = MappingProxyType({})
    owner: Owner | None = None
    pod_timestamp: float | None = None
    """The pod's own clock (Unix seconds), for skew reporting only; freshness uses the adapter's."""
    gauges: Mapping[str, float] = MappingProxyType({})
    latency_bins: Mapping[int, int] = MappingProxyType({})
    """DDSketch bins (index -> count) at the contract's relative accuracy."""
    latency_zero_count: int = 0
    latency_counts_per_request: int = 1
    sketches: Mapping[str, Sketch] = MappingProxyType({})
    """The other sketches (``time_to_first_token``, ``service_time``): a sketch is measured by
    a pod that sends it, empty when no request completed since the last report."""
    requests: int | None = None
    """Completed requests, when the pod counts them apart from its latency sketch."""
    latency_mean: tuple[float, int] | None = None
    """The latencies' sum (seconds) and how many requests it covers, when the pod sends them."""
    source: Source | None = None

    @property
    def completed_requests(self) -> int:
        """Requests this report says completed since the last one."""
        if self.requests is not None:
            return self.requests
        counts = self.latency_zero_count + sum(self.latency_bins.values())
        return counts // self.latency_counts_per_request

    def all_sketches(self) -> dict[str, Sketch]:
        """Every sketch of the report by name, the latency one included (even empty)."""
        latency = Sketch(
            self.latency_bins, self.latency_zero_count, self.latency_counts_per_request
        )
        return {LATENCY: latency, **self.sketches}
