"""The pods' pushes, in virtual time, into the adapter's own store.

Each interval a pod reports what the model server pushes (``model_server.app``,
``adapter.client``): its queue depth and concurrency as means over the interval (rounded to 3
decimals, as the server rounds them), its worker slots and the requests it shed so far, and
the latencies of the requests it answered since the previous report as latency sketch bins
(``adapter.sketch.bin_index``, what ``LatencySketch.from_values`` uses in the push client's
recorder), and as the ``service_time`` sketch how long each request its slots took held one.
The report is the validated ``adapter.report.Report`` that
``adapter.push`` hands the store for a push on the wire, applied with ``Store.apply`` at the
push's time: the store, its windows and expiry are the adapter's, not a copy. HTTP, TLS and
JSON are left out (they change when a number arrives by milliseconds, not what it is).

Speed: a pod's report is *taken* at its push time (``Pushes.take``: the gauges and the list of
latencies and service times), and the reports taken since the last read are *applied* together
(``flush``) before anyone reads the store (an HPA sync, the end of the run): one vectorized
binning and one ``numpy.unique`` per sketch for all of them, then ``Store.apply`` for each,
in push order with its own time. The store ends up exactly as if each had been applied at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from adapter import sketch
from adapter.report import (
    CONCURRENCY,
    QUEUE_DEPTH,
    REQUESTS_SHED,
    SERVICE_TIME,
    WORKER_SLOTS,
    Owner,
    Report,
    Sketch,
)
from adapter.resources import PodRef
from adapter.store import Store
from simulator.pods import Pod

GAUGE_DECIMALS = 3
"""The model server rounds its pushed gauges to this many decimals."""

_SPAN = sketch.MAX_INDEX - sketch.MIN_INDEX + 2
"""Bins per report in the joint key of ``Pushes.flush``; the last one is the zero bin."""
_ZERO_BIN = _SPAN - 1


class PodPusher:
    """One pod's identity on the wire and its report sequence."""

    def __init__(self, pod: Pod, namespace: str, labels: Mapping[str, str], deployment: str):
        self.pod = pod
        self._ref = PodRef(namespace, pod.name)
        self._labels = MappingProxyType(dict(labels))  # one object: the store compares by identity
        self._owner = Owner("Deployment", deployment)
        self._seq = 0

    def report(self, gauges: Mapping[str, float], latency: Sketch, service_time: Sketch) -> Report:
        """The next report, as ``adapter.push`` would decode it."""
        self._seq += 1
        return Report(
            pod=self._ref,
            uid=self.pod.uid,
            seq=self._seq,
            labels=self._labels,
            owner=self._owner,
            gauges=gauges,
            latency_bins=latency.bins,
            latency_zero_count=latency.zero_count,
            sketches=MappingProxyType({SERVICE_TIME: service_time}),
        )


class _Taken(NamedTuple):
    time: float
    pusher: PodPusher
    gauges: dict[str, float]
    latencies: list[float]
    service_times: list[float]


class Pushes:
    """Reports taken at push times, applied to the store in batches; with the whole run's
    latencies as sketch bin counts (bounded memory for any length of run)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._taken: list[_Taken] = []
        self._totals = np.zeros(_SPAN, dtype=np.int64)

    def take(self, now: float, pusher: PodPusher) -> None:
        """The report ``pusher``'s pod makes at ``now``: gauge means and latencies since its
        previous one."""
        pod = pusher.pod
        queue_depth, concurrency = pod.take_mean_gauges(now)
        gauges = {
            QUEUE_DEPTH: round(queue_depth, GAUGE_DECIMALS),
            CONCURRENCY: round(concurrency, GAUGE_DECIMALS),
            WORKER_SLOTS: float(pod.slots),
            REQUESTS_SHED: float(pod.shed),
        }
        self._taken.append(
            _Taken(now, pusher, gauges, pod.take_latencies(), pod.take_service_times())
        )

    def flush(self) -> None:
        """Apply every report taken since the last flush, in the order they were taken."""
        taken, self._taken = self._taken, []
        if not taken:
            return
        latencies, counts = _sketches([t.latencies for t in taken])
        self._totals += counts
        service_times, _ = _sketches([t.service_times for t in taken])
        for report, latency, service_time in zip(taken, latencies, service_times, strict=True):
            self._store.apply(
                report.pusher.report(report.gauges, latency, service_time), report.time
            )

    def latencies(self) -> sketch.LatencySketch:
        """Every latency reported so far, as one sketch (quantiles within 1 % of exact)."""
        occupied = np.flatnonzero(self._totals[:_ZERO_BIN])
        return sketch.LatencySketch(
            occupied + sketch.MIN_INDEX, self._totals[occupied], int(self._totals[_ZERO_BIN])
        )


def _sketches(per_report: Sequence[list[float]]) -> tuple[list[Sketch], np.ndarray]:
    """Each report's values (seconds) as a sketch, and how many of all fell in each bin of the
    joint key (the zero bin last)."""
    lengths = np.fromiter((len(v) for v in per_report), np.int64, len(per_report))
    values = np.fromiter(itertools.chain.from_iterable(per_report), np.float64, lengths.sum())
    binned = values >= sketch.MIN_BINNED_VALUE
    bins = np.full(values.size, _ZERO_BIN, dtype=np.int64)
    bins[binned] = sketch.bin_index(values[binned]) - sketch.MIN_INDEX
    report_of = np.repeat(np.arange(len(per_report)), lengths)
    keys, counts = np.unique(report_of * _SPAN + bins, return_counts=True)
    starts = np.searchsorted(keys, np.arange(len(per_report) + 1) * _SPAN).tolist()
    indices = (keys % _SPAN + sketch.MIN_INDEX).tolist()
    count_list = counts.tolist()
    sketches = []
    for number in range(len(per_report)):
        start, end = starts[number], starts[number + 1]
        zero_count = 0
        if start < end and indices[end - 1] == _ZERO_BIN + sketch.MIN_INDEX:
            end -= 1
            zero_count = count_list[end]
        sketches.append(
            Sketch(dict(zip(indices[start:end], count_list[start:end], strict=True)), zero_count)
        )
    return sketches, np.bincount(bins, minlength=_SPAN)
