"""Per-pod state fed by pushes: identity, labels, owner, gauges and time-sliced latency bins.

An ordinary class, not a service: reports go in with ``apply(report, now)``, queries read
``pods(namespace)`` (with ``is_fresh`` and ``refresh_windows``), and memory is reclaimed by
``sweep(now)``. Time is always an argument (the adapter's wall clock in Unix seconds), so tests move
it by hand.

Window bookkeeping: each pod keeps one slice per ``slice_seconds`` of receipt time (the bins of
its pushes packed in 6 bytes each: a pod with a full 30 s window of 50-bin pushes takes about
12 KiB), and a running bin-wise sum of the slices still inside the window, as a dense band of
counts over the pod's latency range. A push adds to both; a slice that leaves the window is
subtracted from the sum. A query therefore never merges slices: per-pod quantiles and pooled ones
(over a Deployment's pods) read the bands directly.

Memory budgets: every pod's cost is estimated (``PodRecord.held_bytes``) and kept summed through
pushes, expiry and forgetting, so ``apply`` can refuse (``OverBudget``) a report that would take
its pod past ``StoreConfig.pod_budget_bytes``, or grow its pod while the store is at
``StoreConfig.total_budget_bytes``, before changing anything.

Must not import aiohttp or read the clock.
"""

from __future__ import annotations

import enum
import math
from array import array
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import NamedTuple

import numpy as np

from adapter import rates, sketch
from adapter.config import StoreConfig
from adapter.report import LATENCY, Owner, Report, Sketch, Source
from adapter.resources import PodRef


class Applied(enum.Enum):
    """What ``Store.apply`` did with a report."""

    ACCEPTED = "accepted"
    NEW_INCARNATION = "new_incarnation"
    DUPLICATE = "duplicate"


class StoreFull(Exception):
    """The store tracks its maximum number of pods; a report for a new pod was refused."""


class OverBudget(Exception):
    """A report would take its pod past the pod budget, or grow the store past the total budget
    (``StoreConfig``); refused, nothing changed. The window frees room as it slides, so the pod
    may push again after ``retry_after_seconds``, its reports merged meanwhile."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


POD_BYTES = 1700
"""What a tracked pod costs with no labels and no latencies: its record, arrays, names, gauges and
remembered pod section (measured with ``tracemalloc``, short names; the section remembered as
the decoder's typed struct since issue 12, 800 bytes less than as a dict)."""
LABEL_BYTES = 150
"""What a label costs besides its text: two strings, an entry in the pod section and one in the
pod's labels (measured, 64 labels)."""
BIN_BYTES = 7
"""A bin of a report in the window: 6 bytes, and the arrays' spare room."""
SLICE_BYTES = 24
BAND_BYTES = 8
"""A slice's bookkeeping; a bin index of the window's band of counts."""


def label_bytes(labels: Mapping[str, str]) -> int:
    """What a pod's labels cost, by the measured constants."""
    return sum(map(len, labels)) + sum(map(len, labels.values())) + LABEL_BYTES * len(labels)


MAX_KEPT_SELECTIONS = 256
"""Pod selections (``Store.selection``) remembered at once; each holds a tuple of its pods."""
_BAND_MARGIN = 8
"""Spare bins allocated on each side when a pod's window band grows, so it rarely regrows."""
_BAND_TRIM_SIZE = 256
"""A band wider than this is checked on expiry and shrunk when half of it is empty."""


def _zeros(size: int) -> array[int]:
    return array("q", bytes(8 * size))


WINDOW_BYTES = 300
"""What a named window costs with nothing in it: the object, its arrays and its entry."""
COUNT_SLICE_BYTES = 16
"""A slice of a count window (its index, and its value or the first of two)."""
BOUND_BYTES = 48
"""A bucket bound a relayed report's source names (a float in a tuple; measured)."""


class SketchView(NamedTuple):
    """A pod's window of one sketch, to read (never change): its dense band of counts (lowest
    bin index, int64 counts from it on), the values below the smallest bin, how many counts it
    holds, and how many counts a request makes."""

    band: tuple[int, array[int]]
    zero_count: int
    total: int
    counts_per_request: int

    @property
    def requests(self) -> float:
        return self.total / self.counts_per_request


class SketchWindow:
    """The window of one named sketch of one pod (``latency``, ``time_to_first_token``, ...).

    Kept compact, because a pod pushes ~50 bins a second and the window holds 30 seconds of
    them: the bins of every push still in the window sit end to end in two flat arrays
    (``_bin_indices`` int16, ``_bin_counts`` uint32: 6 bytes a bin), with one entry per slice in
    ``_slice_index``/``_slice_end``/``_slice_zero_count``. The window's sum is a dense band of
    int64 counts, ``_band[i]`` counting bin ``_band_low + i``: a push adds its bins in, an
    expired slice takes its bins out, and a query reads the band as it is. Every sketch of a
    report goes through this one class: nothing here knows which sketch it holds.
    """

    __slots__ = (
        "_band",
        "_band_low",
        "_bin_counts",
        "_bin_indices",
        "_slice_end",
        "_slice_index",
        "_slice_zero_count",
        "_window_total",
        "_window_zero_count",
        "counts_per_request",
    )

    def __init__(self, counts_per_request: int = 1) -> None:
        self.counts_per_request = counts_per_request
        self._bin_indices = array("h")
        self._bin_counts = array("I")
        self._slice_index = array("q")
        self._slice_end = array("q")
        self._slice_zero_count = array("q")
        self._band = _zeros(0)
        self._band_low = 0
        self._window_zero_count = 0
        self._window_total = 0

    def held_bytes(self) -> int:
        """What this window costs in memory, by the measured constants."""
        return (
            WINDOW_BYTES
            + BIN_BYTES * len(self._bin_indices)
            + SLICE_BYTES * len(self._slice_index)
            + BAND_BYTES * len(self._band)
        )

    def growth(self, part: Sketch, slice_index: int, low: int, high: int) -> int:
        """How many bytes adding ``part`` in ``slice_index`` would add (changes nothing);
        ``low`` and ``high`` are its lowest and highest bin."""
        bins = part.bins
        if not bins and not part.zero_count:
            return 0
        grown = 0
        if not self._slice_index or self._slice_index[-1] < slice_index:
            grown += SLICE_BYTES
        if bins:
            grown += BIN_BYTES * len(bins)
            size = len(self._band)
            if not size or low < self._band_low or high >= self._band_low + size:
                low, high = self._band_bounds(low, high)
                grown += BAND_BYTES * (high - low + 1 - size)
        return grown

    def add(self, part: Sketch, slice_index: int, low: int, high: int) -> None:
        """Add ``part``'s counts to the window, in ``slice_index``."""
        bins, zero_count = part.bins, part.zero_count
        if not bins and not zero_count:
            return
        if not self._slice_index or self._slice_index[-1] < slice_index:
            self._slice_index.append(slice_index)
            self._slice_end.append(len(self._bin_indices))
            self._slice_zero_count.append(0)
        # else the same slice, or the clock stepped back: keep slices in order so expiry is exact
        if bins:
            # lists: array.fromlist and sum run faster on a list than on a dict view
            indices, counts = list(bins), list(bins.values())
            self._cover(low, high)
            band, offset = self._band, -self._band_low
            for index, count in bins.items():  # one pass: the push hot path
                band[index + offset] += count
            self._bin_indices.fromlist(indices)
            self._bin_counts.fromlist(counts)
            self._window_total += sum(counts)
            self._slice_end[-1] = len(self._bin_indices)
        self._slice_zero_count[-1] += zero_count
        self._window_zero_count += zero_count
        self._window_total += zero_count

    def _band_bounds(self, low: int, high: int) -> tuple[int, int]:
        """The first and last bin of the band grown to cover bins ``low`` to ``high`` too (for
        a band that does not cover them yet: it grows by a margin)."""
        size = len(self._band)
        if size:
            low, high = min(low, self._band_low), max(high, self._band_low + size - 1)
        return max(sketch.MIN_INDEX, low - _BAND_MARGIN), min(sketch.MAX_INDEX, high + _BAND_MARGIN)

    def _cover(self, low: int, high: int) -> None:
        """Grow the band to cover bins ``low`` to ``high``."""
        size = len(self._band)
        if size and low >= self._band_low and high < self._band_low + size:
            return
        low, high = self._band_bounds(low, high)
        band = _zeros(high - low + 1)
        offset = self._band_low - low
        band[offset : offset + size] = self._band
        self._band, self._band_low = band, low

    def expire(self, oldest_slice: int) -> int:
        """Drop the slices before ``oldest_slice``; returns how many bytes that frees
        (``held_bytes`` before less after)."""
        if not self._slice_index or self._slice_index[0] >= oldest_slice:
            return 0  # nothing left the window: the common case, kept cheap for queries
        expired = 0
        while expired < len(self._slice_index) and self._slice_index[expired] < oldest_slice:
            expired += 1
        band_size = len(self._band)
        end = self._slice_end[expired - 1]
        band, offset = self._band, -self._band_low
        for index, count in zip(self._bin_indices[:end], self._bin_counts[:end], strict=True):
            band[index + offset] -= count
        gone_zero = sum(self._slice_zero_count[:expired])
        self._window_total -= sum(self._bin_counts[:end]) + gone_zero
        self._window_zero_count -= gone_zero
        del self._bin_indices[:end], self._bin_counts[:end]
        del self._slice_index[:expired], self._slice_zero_count[:expired]
        # in place: a new array per push would be a new long-lived object for the cyclic
        # collector to promote, one per pod a second, and its full collections grow with them
        slice_end = self._slice_end
        del slice_end[:expired]
        for i in range(len(slice_end)):
            slice_end[i] -= end
        if not self._slice_index:
            self._band = _zeros(0)
        elif len(self._band) > _BAND_TRIM_SIZE:
            self._trim()
        return BIN_BYTES * end + SLICE_BYTES * expired + BAND_BYTES * (band_size - len(self._band))

    def _trim(self) -> None:
        """Shrink a wide band to the bins still counted, so an outlier that left the window
        does not keep the pod's band (and every query reading it) wide."""
        occupied = np.flatnonzero(np.frombuffer(self._band, dtype=np.int64))
        if not occupied.size:
            return
        low = max(0, int(occupied[0]) - _BAND_MARGIN)
        high = min(len(self._band) - 1, int(occupied[-1]) + _BAND_MARGIN)
        if 2 * (high - low + 1) <= len(self._band):
            self._band = self._band[low : high + 1]
            self._band_low += low

    @property
    def band(self) -> tuple[int, array[int]]:
        """The window's counts as (lowest bin index, dense int64 counts from it on): the
        store's own band, not a copy. Read without a ``view`` where a query reads each pod."""
        return (self._band_low, self._band)

    @property
    def zero_count(self) -> int:
        """The window's values below the smallest bin."""
        return self._window_zero_count

    def view(self) -> SketchView:
        """The window as it is (the store's own band, not a copy)."""
        return SketchView(
            self.band, self._window_zero_count, self._window_total, self.counts_per_request
        )


class CountWindow:
    """The window of numbers a pod counts per report (its completed requests; its latencies'
    sum and count): per slice, ``width`` running sums."""

    __slots__ = ("_slice_index", "_sums", "_values", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self._slice_index = array("q")
        self._values = array("d")
        self._sums = [0.0] * width

    def held_bytes(self) -> int:
        return WINDOW_BYTES + COUNT_SLICE_BYTES * self.width * len(self._slice_index)

    def growth(self, slice_index: int) -> int:
        if not self._slice_index or self._slice_index[-1] < slice_index:
            return COUNT_SLICE_BYTES * self.width
        return 0

    def add(self, values: tuple[float, ...], slice_index: int) -> None:
        if not self._slice_index or self._slice_index[-1] < slice_index:
            self._slice_index.append(slice_index)
            self._values.extend([0.0] * self.width)
        for i, value in enumerate(values):
            self._values[i - self.width] += value
            self._sums[i] += value

    def expire(self, oldest_slice: int) -> int:
        """Drop the slices before ``oldest_slice``; returns the bytes freed."""
        expired = 0
        while expired < len(self._slice_index) and self._slice_index[expired] < oldest_slice:
            expired += 1
        if not expired:
            return 0
        gone = self._values[: expired * self.width]
        for i in range(self.width):
            self._sums[i] -= sum(gone[i :: self.width])
        del self._slice_index[:expired], self._values[: expired * self.width]
        if not self._slice_index:
            self._sums = [0.0] * self.width  # no rounding left behind
        return COUNT_SLICE_BYTES * self.width * expired

    @property
    def sums(self) -> tuple[float, ...]:
        """The window's sums."""
        return tuple(self._sums)


REQUESTS = "requests"
LATENCY_MEAN = "latency_mean"


def source_bytes(source: Source | None) -> int:
    """What a pod's report source costs, by the measured constants."""
    if source is None:
        return 0
    texts = sum(len(k) + len(v) for k, v in source.missing.items())
    bounds = sum(len(b) for b in source.buckets.values())
    return LABEL_BYTES * (2 + len(source.missing)) + texts + BOUND_BYTES * bounds


class PodRecord:
    """What the store knows of one pod incarnation. Read-only outside this module.

    Its sketches each have a ``SketchWindow`` by name, made when a report first carries one;
    what it counts per report besides (``requests``, the ``latency_mean`` sum and count) a
    ``CountWindow``. The latest report's gauges, source and sketches say what the pod reports
    now (``lacks``).
    """

    __slots__ = (
        "counts",
        "explicit_counts",
        "first_seen",
        "gauges",
        "history",
        "label_bytes",
        "labels",
        "last_seen",
        "last_seq",
        "owner",
        "pod",
        "sketch_names",
        "source",
        "source_bytes",
        "uid",
        "windows",
    )

    def __init__(self, report: Report, now: float) -> None:
        self.pod: PodRef = report.pod
        self.uid: str = report.uid
        self.first_seen: float = now
        self.last_seq: int = 0
        self.last_seen: float = now
        self.labels: Mapping[str, str] = {}
        self.label_bytes = 0
        """``label_bytes(self.labels)``, kept: a pod's labels rarely change."""
        self.owner: Owner | None = None
        self.gauges: Mapping[str, float] = {}
        self.source: Source | None = None
        self.source_bytes = 0
        self.sketch_names: frozenset[str] = frozenset()
        """The sketches the latest report carried (besides ``latency``, always reported)."""
        self.explicit_counts: frozenset[str] = frozenset()
        """The counts (``requests``, ``latency_mean``) the latest report carried itself."""
        self.windows: dict[str, SketchWindow] = {}
        self.counts: dict[str, CountWindow] = {}
        self.history = rates.RateHistory()
        """Running totals over the rate window, for the arrival rate (``adapter.rates``)."""

    def held_bytes(self) -> int:
        """What this pod costs in memory, estimated from what it holds by the measured constants
        (``POD_BYTES``, ``label_bytes``, ``WINDOW_BYTES``, ``BIN_BYTES``, ``SLICE_BYTES``,
        ``BAND_BYTES``, ``COUNT_SLICE_BYTES``)."""
        return (
            POD_BYTES
            + self.label_bytes
            + self.source_bytes
            + self.history.held_bytes()
            + sum(w.held_bytes() for w in self.windows.values())
            + sum(c.held_bytes() for c in self.counts.values())
        )

    def held_bytes_with(self, report: Report, parts: _Parts, slice_index: int, held: int) -> int:
        """What this pod, holding ``held`` bytes now, would hold with ``report`` (its sketches
        ``parts``) applied in ``slice_index`` (changes nothing)."""
        if report.labels is not self.labels:
            held += label_bytes(report.labels) - self.label_bytes
        if report.source is not self.source:
            held += source_bytes(report.source) - self.source_bytes
        for name, part, low, high in parts:
            window = self.windows.get(name)
            if window is None or window.counts_per_request != part.counts_per_request:
                if not part.bins and not part.zero_count:
                    continue
                held -= window.held_bytes() if window is not None else 0
                window = SketchWindow(part.counts_per_request)
                held += WINDOW_BYTES
            held += window.growth(part, slice_index, low, high)
        for name, values in _counted(report):
            counts = self.counts.get(name)
            held += WINDOW_BYTES if counts is None else 0
            held += counts.growth(slice_index) if counts else COUNT_SLICE_BYTES * len(values)
        return held

    def _apply(self, report: Report, parts: _Parts, slice_index: int, now: float) -> None:
        self.last_seq = report.seq
        self.last_seen = now
        if report.labels is not self.labels:
            self.label_bytes = label_bytes(report.labels)
        self.labels = report.labels
        self.owner = report.owner
        self.gauges = report.gauges
        if report.source is not self.source:
            self.source_bytes = source_bytes(report.source)
        self.source = report.source
        if report.sketches.keys() != self.sketch_names:
            self.sketch_names = frozenset(report.sketches)
        for name, part, low, high in parts:
            window = self.windows.get(name)
            if window is None or window.counts_per_request != part.counts_per_request:
                if not part.bins and not part.zero_count:
                    continue
                # a new window; one that counted requests differently starts over
                window = self.windows[name] = SketchWindow(part.counts_per_request)
            window.add(part, slice_index, low, high)
        explicit = []
        for name, values in _counted(report):
            explicit.append(name)
            counts = self.counts.get(name)
            if counts is None:
                counts = self.counts[name] = CountWindow(len(values))
            counts.add(values, slice_index)
        if len(explicit) != len(self.explicit_counts) or not self.explicit_counts.issuperset(
            explicit
        ):
            self.explicit_counts = frozenset(explicit)

    def _expire(self, oldest_slice: int) -> int:
        """Drop the slices before ``oldest_slice``; returns how many bytes that frees."""
        freed = 0
        for window in self.windows.values():
            freed += window.expire(oldest_slice)
        for counts in self.counts.values():
            freed += counts.expire(oldest_slice)
        return freed

    def sketch_window(self, name: str) -> SketchView | None:
        """The window of the sketch ``name``, or None when the pod never reported it."""
        window = self.windows.get(name)
        return window.view() if window is not None else None

    def latency(self) -> sketch.LatencySketch:
        """The latencies of requests completed within the window, as one sketch."""
        view = self.sketch_window(LATENCY)
        if view is None:
            return sketch.LatencySketch.empty()
        return sketch.LatencySketch.from_bands([view.band], [view.zero_count])

    @property
    def window_band(self) -> tuple[int, array[int]]:
        """The window's latency counts as (lowest bin index, dense int64 counts from it on).
        The store's own band, not a copy: read it, never change it."""
        view = self.sketch_window(LATENCY)
        return view.band if view is not None else (0, _zeros(0))

    @property
    def window_bins(self) -> Mapping[int, int]:
        """The window's non-empty latency bins (index -> count)."""
        low, band = self.window_band
        return {low + i: count for i, count in enumerate(band) if count}

    @property
    def window_zero_count(self) -> int:
        """The window's latencies below the smallest bin."""
        view = self.sketch_window(LATENCY)
        return view.zero_count if view is not None else 0

    def completed_requests(self) -> float:
        """Requests completed within the window: what the pod counted, if it counts them
        itself, else the latencies it reported."""
        if REQUESTS in self.explicit_counts:
            return self.counts[REQUESTS].sums[0]
        view = self.sketch_window(LATENCY)
        return view.requests if view is not None else 0

    def latency_sums(self) -> tuple[float, float] | None:
        """The window's latencies summed and counted as the pod reported them (its own exact
        ``latency_mean``), or None when it does not send them."""
        if LATENCY_MEAN not in self.explicit_counts:
            return None
        total, count = self.counts[LATENCY_MEAN].sums
        return total, count

    def covered_seconds(self, now: float, window_seconds: float, slice_seconds: float) -> float:
        """How much of the window this incarnation has reported on (its first report covers a
        slice before its arrival); the denominator of its request rate."""
        return min(window_seconds, now - self.first_seen + slice_seconds)


_Parts = list[tuple[str, Sketch, int, int]]
"""A report's sketches: name, sketch, lowest and highest bin."""


def _parts(report: Report) -> _Parts:
    """Every sketch of ``report`` with its lowest and highest bin."""
    parts = []
    for name, part in report.all_sketches().items():
        bins = part.bins
        low, high = (min(bins), max(bins)) if bins else (0, 0)
        parts.append((name, part, low, high))
    return parts


def _counted(report: Report) -> list[tuple[str, tuple[float, ...]]]:
    """What ``report`` counts itself, by count window."""
    counted = []
    if report.requests is not None:
        counted.append((REQUESTS, (float(report.requests),)))
    if report.latency_mean is not None:
        counted.append((LATENCY_MEAN, (report.latency_mean[0], float(report.latency_mean[1]))))
    return counted


class Store:
    """Every tracked pod, by namespace then name."""

    def __init__(self, config: StoreConfig, max_pods: int = 100_000) -> None:
        self.config = config
        self.max_pods = max_pods
        self._pods: dict[str, dict[str, PodRecord]] = {}
        self._count = 0
        self._selections: dict[Hashable, tuple[tuple[PodRecord, ...], int]] = {}
        """``selection``'s answers, valid until a pod is added, replaced by a new incarnation or
        forgotten, or its labels or owner change (``_membership_changed``)."""
        self._held_bytes = 0
        self._pod_budget_bytes = config.pod_budget_bytes
        self._total_budget_bytes = config.total_budget_bytes
        self.receiving_since: float | None = None
        """When reports could first arrive (``start_receiving``). None: a store not fed by a
        server (tests, benchmarks), which counts as having seen every window whole."""

    def start_receiving(self, now: float) -> None:
        """Note that reports can arrive from ``now`` on (the server starts listening): a replica
        that just started has seen none of the window before it."""
        self.receiving_since = now

    def covered_seconds(self, now: float) -> float:
        """How much of the window this store has seen: all of it, or, while it has been
        receiving for less than the window, that long."""
        window = self.config.window_seconds
        if self.receiving_since is None:
            return window
        return min(window, max(0.0, now - self.receiving_since))

    def __len__(self) -> int:
        return self._count

    @property
    def held_bytes(self) -> int:
        """What the tracked pods cost in memory together (``PodRecord.held_bytes`` summed)."""
        return self._held_bytes

    def _membership_changed(self) -> None:
        self._selections.clear()  # they may hold pods that are gone, or miss new ones

    def selection(
        self, key: Hashable, namespace: str | None, picks: Callable[[PodRecord], bool]
    ) -> tuple[tuple[PodRecord, ...], int]:
        """The tracked pods of ``namespace`` that ``picks``, and how many are tracked there.

        Remembered under ``key`` (which must name what ``picks`` picks) until a pod comes, goes
        or changes labels or owner, for at most ``MAX_KEPT_SELECTIONS`` keys, the least recently
        asked going first: HPAs ask the same few selections every 15 seconds, and matching every
        pod's labels each time was a real share of a 1,000-pod query.
        """
        kept = self._selections.pop(key, None)
        if kept is None:
            tracked = list(self.pods(namespace))
            kept = (tuple(r for r in tracked if picks(r)), len(tracked))
            if len(self._selections) >= MAX_KEPT_SELECTIONS:
                del self._selections[next(iter(self._selections))]
        self._selections[key] = kept  # last: the most recently asked
        return kept

    def _slice_index(self, now: float) -> int:
        return math.floor(now / self.config.slice_seconds)

    def _oldest_slice(self, now: float) -> int:
        """Slices before this one hold only reports older than the window."""
        return math.floor((now - self.config.window_seconds) / self.config.slice_seconds) + 1

    def has(self, namespace: str, name: str) -> bool:
        """Whether a pod of that name is tracked (any incarnation, fresh or not)."""
        return name in self._pods.get(namespace, ())

    def get(self, pod: PodRef) -> PodRecord | None:
        """The record of ``pod``, fresh or not."""
        return self._pods.get(pod.namespace, {}).get(pod.name)

    def apply(self, report: Report, now: float) -> Applied:
        """Take one report received at ``now``.

        Raises ``StoreFull`` when a new pod would exceed ``max_pods``, and ``OverBudget`` when
        the pod would exceed the pod memory budget or grow the store past its total budget
        (``StoreConfig``); either changes nothing but the pod's window, slid to ``now``.
        """
        namespace = self._pods.get(report.pod.namespace)
        record = namespace.get(report.pod.name) if namespace else None
        slice_index = self._slice_index(now)
        parts = _parts(report)
        outcome = Applied.ACCEPTED
        if record is None or record.uid != report.uid:
            if record is None and self._count >= self.max_pods:
                raise StoreFull(f"the adapter tracks its maximum of {self.max_pods} pods")
            held = 0 if record is None else record.held_bytes()
            new = PodRecord(report, now)
            needed = new.held_bytes_with(report, parts, slice_index, new.held_bytes())
            self._admit(report.pod, held, needed)
            outcome = Applied.ACCEPTED if record is None else Applied.NEW_INCARNATION
            if record is None:
                self._count += 1
            record = new
            self._pods.setdefault(report.pod.namespace, {})[report.pod.name] = record
            self._membership_changed()
        elif report.seq <= record.last_seq:
            return Applied.DUPLICATE
        else:
            self._held_bytes -= record._expire(self._oldest_slice(now))
            held = record.held_bytes()
            needed = record.held_bytes_with(report, parts, slice_index, held)
            if needed > held:
                self._admit(report.pod, held, needed)
            if (record.labels is not report.labels and record.labels != report.labels) or (
                record.owner is not report.owner and record.owner != report.owner
            ):
                self._membership_changed()
        record._apply(report, parts, slice_index, now)
        history = record.history
        history_bytes = history.held_bytes()
        config = self.config
        history.record(
            now,
            report.completed_requests,
            report.gauges,
            max(config.rate_window_seconds, config.window_seconds),
            config.slice_seconds,
        )
        self._held_bytes += needed - held + history.held_bytes() - history_bytes
        return outcome

    def _admit(self, pod: PodRef, held: int, needed: int) -> None:
        """Raise ``OverBudget`` unless a pod holding ``held`` bytes may hold ``needed``."""
        retry_after = max(1, math.ceil(self.config.slice_seconds))
        budget = self._pod_budget_bytes
        if needed > budget:
            raise OverBudget(
                f"pod {pod} would hold {needed:,} bytes of labels and latencies, more than the"
                f" {budget:,} bytes a pod may hold for a window of"
                f" {self.config.window_seconds:g}s: push less often or fewer bins",
                retry_after,
            )
        total = self._total_budget_bytes
        if total is not None and needed > held and self._held_bytes - held + needed > total:
            raise OverBudget(
                f"the adapter holds {self._held_bytes:,} bytes of pod data, near the"
                f" {total:,} its memory allows: a push that would make pod {pod} hold more"
                " waits until the window frees room",
                retry_after,
            )

    def is_fresh(self, record: PodRecord, now: float) -> bool:
        """Whether ``record`` is recent enough to be served."""
        return now - record.last_seen <= self.config.max_age_seconds

    def fresh(self, records: Iterable[PodRecord], now: float) -> list[PodRecord]:
        """Those of ``records`` recent enough to be served (``is_fresh``, for many at once)."""
        max_age = self.config.max_age_seconds
        return [r for r in records if now - r.last_seen <= max_age]

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

    def refresh_windows(
        self, records: Iterable[PodRecord], now: float, slack_slices: int = 0
    ) -> None:
        """Drop the slices of ``records`` that left the window by ``now``.

        With ``slack_slices`` the window may keep that many slices more. Queries pass 1: every
        push already expires the pod's window, so a query within a slice of the last push then
        has nothing to subtract, and a 1,000-pod query does no per-bin work.

        A pod that pushed less than ``slack_slices`` slices before ``now`` is skipped without
        looking at its slices: its push expired everything before ``_oldest_slice`` of its
        time, which is at most ``slack_slices`` below that of ``now``.
        """
        oldest = self._oldest_slice(now) - slack_slices
        recent = now - slack_slices * self.config.slice_seconds
        for record in records:
            if record.last_seen <= recent:  # checked here: a call per pod costs more
                self._held_bytes -= record._expire(oldest)

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
        self._held_bytes -= record.held_bytes()
        self._membership_changed()
        return True

    def sweep(self, now: float) -> int:
        """Forget pods silent for longer than ``forget_after_seconds``, and drop what left the
        window of the others (a silent pod's window slides only here); returns how many pods
        were forgotten."""
        horizon = now - self.config.forget_after_seconds
        forgotten = 0
        for namespace in list(self._pods):
            pods = self._pods[namespace]
            for name in [n for n, r in pods.items() if r.last_seen < horizon]:
                self._held_bytes -= pods.pop(name).held_bytes()
                forgotten += 1
            if not pods:
                del self._pods[namespace]
            else:
                self.refresh_windows(pods.values(), now)
        self._count -= forgotten
        if forgotten:
            self._membership_changed()
        return forgotten
