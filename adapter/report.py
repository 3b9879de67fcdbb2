"""One pod's push report, decoded and validated: the value that crosses from ``push`` to ``store``.

Pure data. ``adapter.push`` builds it from the wire; ``adapter.store`` applies it;
``adapter.client`` encodes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from adapter.resources import PodRef

QUEUE_DEPTH = "inference_queue_depth"
CONCURRENCY = "inference_concurrency"
WORKER_SLOTS = "inference_worker_slots"
"""Requests a pod serves at once (its worker slots, or a batching server's batch seats)."""
REQUESTS_SHED = "inference_requests_shed_total"
"""Requests a pod refused because its queue was full, since it started: a counter."""
GAUGE_NAMES = (QUEUE_DEPTH, CONCURRENCY, WORKER_SLOTS, REQUESTS_SHED)
"""The gauges a report may carry."""


@dataclass(frozen=True)
class Owner:
    """The workload that owns the pod (its Deployment, as the push contract names it)."""

    kind: str
    name: str


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

    @property
    def completed_requests(self) -> int:
        """Requests whose latency this report carries."""
        return self.latency_zero_count + sum(self.latency_bins.values())
