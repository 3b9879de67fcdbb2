"""What arrived at a pod over the rate window, not only what it completed.

``inference_required_replicas`` needs the *offered* arrival rate: a Deployment that is
overloaded completes only what it can, so completions alone read it as merely full. What
arrived at a pod over a span is what it completed, plus what it shed, plus the growth of the
requests it holds (waiting or in a slot):

    arrived = completed + shed + (in_system_now - in_system_then)

A ``RateHistory`` keeps, per pod, one sample per time slice of the running totals it needs:
the requests its reports carried (the store counts them), the pod's
``inference_requests_shed_total`` counter, and its ``inference_concurrency`` and
``inference_queue_depth`` gauges. ``change`` compares the newest sample with the newest one at
least ``rate_window_seconds`` old. Counters make lost or merged reports harmless: a difference
of totals does not care how many reports carried them.

Pure: ``array`` and the standard library; times are arguments (the adapter's receipt clock).
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Mapping
from typing import NamedTuple

from adapter.report import CONCURRENCY, QUEUE_DEPTH, REQUESTS_SHED

_STRIDE = 5
"""Floats per sample: time, completed, shed, in system, queue."""
_TIME, _COMPLETED, _SHED, _IN_SYSTEM, _QUEUE = range(_STRIDE)

HISTORY_BYTES = 64
"""What an empty history costs (its array object), besides 8 bytes per float it holds."""


class Change(NamedTuple):
    """What one pod did over a span of its history (counts, not rates)."""

    seconds: float
    """The span covered, > 0."""
    completed: float
    """Requests completed (the counts its reports carried)."""
    shed: float
    """Requests it refused because its queue was full (0 when it does not say)."""
    in_system_growth: float
    """Change of the requests it holds, waiting or in a slot (0 when it does not say)."""
    queue_growth: float
    """Change of the requests waiting for a slot (0 when it does not say)."""
    queue: float
    """The requests waiting for a slot now (0 when it does not say)."""

    @property
    def arrived(self) -> float:
        """The requests that arrived over the span (never below 0)."""
        return max(0.0, self.completed + self.shed + self.in_system_growth)


class RateHistory:
    """One pod's running totals, a sample per slice, back to ``horizon_seconds`` before its
    newest report (and one sample more, the baseline of a span that long).

    Not thread-safe; owned by the pod's store record.
    """

    __slots__ = ("_completed", "_samples")

    def __init__(self) -> None:
        self._samples = array("d")
        self._completed = 0.0

    def held_bytes(self) -> int:
        """What this history costs in memory (estimated)."""
        return HISTORY_BYTES + 8 * len(self._samples)

    def record(
        self,
        now: float,
        completed: int,
        gauges: Mapping[str, float],
        horizon_seconds: float,
        slice_seconds: float,
    ) -> None:
        """Note a report received at ``now`` that carried ``completed`` requests and
        ``gauges``; forget what is older than the horizon needs."""
        self._completed += completed
        sample = (
            now,
            self._completed,
            gauges.get(REQUESTS_SHED, math.nan),
            gauges.get(CONCURRENCY, math.nan),
            gauges.get(QUEUE_DEPTH, math.nan),
        )
        samples = self._samples
        if samples and math.floor(samples[-_STRIDE] / slice_seconds) == math.floor(
            now / slice_seconds
        ):
            samples[-_STRIDE:] = array("d", sample)  # one sample per slice: the newest
        else:
            samples.extend(sample)
        cutoff = now - horizon_seconds
        keep_from = 0
        while keep_from + _STRIDE < len(samples) and samples[keep_from + _STRIDE] <= cutoff:
            keep_from += _STRIDE  # the next one is old enough to be the baseline
        if keep_from:
            del samples[:keep_from]

    def change(
        self, now: float, window_seconds: float, first_seen: float, slice_seconds: float
    ) -> Change | None:
        """What the pod did from the newest sample at least ``window_seconds`` before ``now``
        to its newest sample; None without a span (no sample, or none within the window).

        A pod younger than the window is measured from its first report, which covers one
        slice before its arrival (``first_seen``) for completions; its gauges and counters
        start at their first reported values (what it held or shed before is not known).

        The span ends at the newest sample while the pod reports on time (within half an
        interval more than its usual spacing of samples); a pod that stopped (it exited, or its
        reports are late) is measured up to ``now``, so what it did counts over the part of the
        window it reported on, not as a rate it keeps up.
        """
        samples = self._samples
        if not samples:
            return None
        newest = len(samples) - _STRIDE
        cutoff = now - window_seconds
        base = newest
        while base >= 0 and samples[base] > cutoff:
            base -= _STRIDE
        last = samples[newest]
        spacing = (last - samples[0]) / (newest // _STRIDE) if newest else slice_seconds
        end = now if now - last > 1.5 * max(spacing, slice_seconds) else last
        if base < 0:  # younger than the window
            base = 0
            seconds = end - first_seen + slice_seconds
            completed = samples[newest + _COMPLETED]
        else:
            seconds = end - samples[base]
            completed = samples[newest + _COMPLETED] - samples[base + _COMPLETED]
        if seconds <= 0:
            return None
        return Change(
            seconds=seconds,
            completed=completed,
            shed=_increase(samples[base + _SHED : newest + _SHED + 1 : _STRIDE]),
            in_system_growth=_known(samples[newest + _IN_SYSTEM] - samples[base + _IN_SYSTEM]),
            queue_growth=_known(samples[newest + _QUEUE] - samples[base + _QUEUE]),
            queue=_known(samples[newest + _QUEUE]),
        )


def _increase(totals: array[float]) -> float:
    """How much a counter rose over successive ``totals``, as Prometheus' ``increase`` counts
    it: a fall is a reset (the pod's process restarted), after which the new total counts
    whole; steps from or to an unknown total (NaN: not reported) count nothing."""
    rise = 0.0
    for then, now in itertools.pairwise(totals):
        if not (math.isnan(then) or math.isnan(now)):
            rise += now - then if now >= then else now
    return rise


def _known(value: float) -> float:
    """``value``, or 0.0 where a pod did not report what it is made of (NaN)."""
    return 0.0 if math.isnan(value) else value
