"""Per-pod state fed by pushes: identity, labels, owner, gauges and time-sliced latency bins.

An ordinary class, not a service: reports go in with ``apply(report, now)``, queries read
``pods(namespace)`` (with ``is_fresh`` and ``refresh_window``), and memory is reclaimed by
``sweep(now)``. Time is always an argument (the adapter's wall clock in Unix seconds), so tests move
it by hand.

Window bookkeeping: each pod keeps one slice per ``slice_seconds`` of receipt time, and a running
bin-wise sum of the slices still inside the window. A push adds to both; a slice that leaves the
window is subtracted from the sum. A query therefore never merges slices: per-pod quantiles read the
sums directly, and a pod's sketch (for merged, object-level quantiles) is rebuilt only when its sum
changed.

Must not import aiohttp or read the clock.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from adapter import sketch
from adapter.config import StoreConfig
from adapter.report import Owner, PodRef, Report


class Applied(enum.Enum):
    """What ``Store.apply`` did with a report."""

    ACCEPTED = "accepted"
    NEW_INCARNATION = "new_incarnation"
    DUPLICATE = "duplicate"


class StoreFull(Exception):
    """The store tracks its maximum number of pods; a report for a new pod was refused."""


@dataclass
class _Slice:
    index: int
    bins: dict[int, int] = field(default_factory=dict)
    zero_count: int = 0


def _subtract_bins(from_: dict[int, int], bins: Mapping[int, int]) -> None:
    for index, count in bins.items():
        left = from_[index] - count
        if left:
            from_[index] = left
        else:
            del from_[index]


class PodRecord:
    """What the store knows of one pod incarnation. Read-only outside this module."""

    __slots__ = (
        "_sketch",
        "_slices",
        "_window_bins",
        "_window_zero_count",
        "first_seen",
        "gauges",
        "labels",
        "last_seen",
        "last_seq",
        "owner",
        "pod",
        "uid",
    )

    def __init__(self, report: Report, now: float) -> None:
        self.pod: PodRef = report.pod
        self.uid: str = report.uid
        self.first_seen: float = now
        self.last_seq: int = 0
        self.last_seen: float = now
        self.labels: Mapping[str, str] = {}
        self.owner: Owner | None = None
        self.gauges: Mapping[str, float] = {}
        self._slices: deque[_Slice] = deque()
        self._window_bins: dict[int, int] = {}
        self._window_zero_count = 0
        self._sketch: sketch.LatencySketch | None = None

    def _apply(self, report: Report, slice_index: int, now: float) -> None:
        self.last_seq = report.seq
        self.last_seen = now
        self.labels = report.labels
        self.owner = report.owner
        self.gauges = report.gauges
        if not report.latency_bins and not report.latency_zero_count:
            return
        if self._slices and self._slices[-1].index >= slice_index:
            # Same slice, or the clock stepped back: keep slices in order so expiry stays exact.
            slice_index = self._slices[-1].index
        else:
            self._slices.append(_Slice(slice_index))
        current = self._slices[-1]
        slice_bins, window_bins = current.bins, self._window_bins
        for index, count in report.latency_bins.items():  # one pass: the push hot path
            slice_bins[index] = slice_bins.get(index, 0) + count
            window_bins[index] = window_bins.get(index, 0) + count
        current.zero_count += report.latency_zero_count
        self._window_zero_count += report.latency_zero_count
        self._sketch = None

    def _expire(self, oldest_slice: int) -> None:
        while self._slices and self._slices[0].index < oldest_slice:
            gone = self._slices.popleft()
            _subtract_bins(self._window_bins, gone.bins)
            self._window_zero_count -= gone.zero_count
            self._sketch = None

    def latency(self) -> sketch.LatencySketch:
        """The latencies of requests completed within the window, as one sketch."""
        if self._sketch is None:
            self._sketch = sketch.LatencySketch.from_bins(
                self._window_bins, self._window_zero_count
            )
        return self._sketch

    @property
    def window_bins(self) -> Mapping[int, int]:
        """The window's latency bins (index -> count); read-only, changes with pushes."""
        return self._window_bins

    @property
    def window_zero_count(self) -> int:
        """The window's latencies below the smallest bin."""
        return self._window_zero_count

    def completed_requests(self) -> int:
        """Requests completed within the window."""
        return self._window_zero_count + sum(self._window_bins.values())

    def covered_seconds(self, now: float, window_seconds: float, slice_seconds: float) -> float:
        """How much of the window this incarnation has reported on (its first report covers a
        slice before its arrival); the denominator of its request rate."""
        return min(window_seconds, now - self.first_seen + slice_seconds)


class Store:
    """Every tracked pod, by namespace then name."""

    def __init__(self, config: StoreConfig, max_pods: int = 100_000) -> None:
        self.config = config
        self.max_pods = max_pods
        self._pods: dict[str, dict[str, PodRecord]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _slice_index(self, now: float) -> int:
        return math.floor(now / self.config.slice_seconds)

    def _oldest_slice(self, now: float) -> int:
        """Slices before this one hold only reports older than the window."""
        return math.floor((now - self.config.window_seconds) / self.config.slice_seconds) + 1

    def get(self, pod: PodRef) -> PodRecord | None:
        """The record of ``pod``, fresh or not."""
        return self._pods.get(pod.namespace, {}).get(pod.name)

    def apply(self, report: Report, now: float) -> Applied:
        """Take one report received at ``now``. Raises StoreFull (and changes nothing) when a new
        pod would exceed ``max_pods``."""
        namespace = self._pods.get(report.pod.namespace)
        record = namespace.get(report.pod.name) if namespace else None
        outcome = Applied.ACCEPTED
        if record is None or record.uid != report.uid:
            if record is None and self._count >= self.max_pods:
                raise StoreFull(f"the adapter tracks its maximum of {self.max_pods} pods")
            outcome = Applied.ACCEPTED if record is None else Applied.NEW_INCARNATION
            if record is None:
                self._count += 1
            record = PodRecord(report, now)
            self._pods.setdefault(report.pod.namespace, {})[report.pod.name] = record
        elif report.seq <= record.last_seq:
            return Applied.DUPLICATE
        record._expire(self._oldest_slice(now))
        record._apply(report, self._slice_index(now), now)
        return outcome

    def is_fresh(self, record: PodRecord, now: float) -> bool:
        """Whether ``record`` is recent enough to be served."""
        return now - record.last_seen <= self.config.max_age_seconds

    def namespaces(self) -> list[str]:
        """Namespaces with at least one tracked pod."""
        return sorted(self._pods)

    def pods(self, namespace: str | None) -> Iterator[PodRecord]:
        """Every tracked pod (fresh or not) of ``namespace``, or of all namespaces for None."""
        if namespace is not None:
            yield from self._pods.get(namespace, {}).values()
            return
        for pods in self._pods.values():
            yield from pods.values()

    def refresh_window(self, record: PodRecord, now: float, slack_slices: int = 0) -> None:
        """Drop the slices of ``record`` that left the window by ``now``.

        With ``slack_slices`` the window may keep that many slices more. Queries pass 1: every
        push already expires the pod's window, so a query within a slice of the last push then
        has nothing to subtract, and a 1,000-pod query does no per-bin work.
        """
        record._expire(self._oldest_slice(now) - slack_slices)

    def forget(self, pod: PodRef, uid: str | None = None) -> bool:
        """Drop ``pod`` at once (it was deleted); with ``uid``, only that incarnation.
        Returns whether anything was dropped."""
        pods = self._pods.get(pod.namespace)
        if pods is None:
            return False
        record = pods.get(pod.name)
        if record is None or (uid is not None and record.uid != uid):
            return False
        del pods[pod.name]
        if not pods:
            del self._pods[pod.namespace]
        self._count -= 1
        return True

    def sweep(self, now: float) -> int:
        """Forget pods silent for longer than ``forget_after_seconds``; returns how many."""
        horizon = now - self.config.forget_after_seconds
        forgotten = 0
        for namespace in list(self._pods):
            pods = self._pods[namespace]
            for name in [n for n, r in pods.items() if r.last_seen < horizon]:
                del pods[name]
                forgotten += 1
            if not pods:
                del self._pods[namespace]
        self._count -= forgotten
        return forgotten
