"""Histogram buckets into sketch bins, spread the way ``histogram_quantile`` interpolates.

A Prometheus histogram says only how many observations fell between two bounds. Prometheus'
``histogram_quantile`` reads a bucket as if its observations were spread evenly between its
lower and upper bound (the first bucket's lower bound taken as 0), and answers a quantile in the
``+Inf`` bucket with the highest finite bound. ``spread`` gives the sketch exactly that shape:
each request of a bucket becomes ``units_per_request`` counts laid evenly over the sketch bins
inside the bucket's bounds (in proportion to the part of each bin the bucket covers, rounded so
the total stays exact), and the ``+Inf`` bucket's requests sit at the highest finite bound.

So a sketch built from bucket deltas, merged over pods and time as every sketch is, answers a
quantile within the sketch's 1 % of what ``histogram_quantile`` answers on the same buckets
summed; nothing finer than the buckets is invented. With ``units_per_request`` of 1024 the
rounding and the sketch's rank convention (``numpy.quantile``'s) move a quantile by at most a
thousandth of a request's share of its bucket.

Pure: numpy and ``adapter.sketch`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import numpy as np

from adapter import sketch

UNITS_PER_REQUEST: Final = 1024
"""Counts a relayed request is spread into (a power of two: the adapter rescales exactly when
it pools them with pods that count one per request)."""


def buckets(cumulative: Mapping[float, float]) -> list[tuple[float, float, float]]:
    """``(lower, upper, count)`` of each bucket with observations, from cumulative counts keyed
    by upper bound (``math.inf`` for ``+Inf``), read as ``histogram_quantile`` reads them:
    bounds sorted, counts forced monotonic, the first lower bound 0 (or the first bound if it
    is not positive), and the ``+Inf`` bucket a point at the highest finite bound (lower equal
    to upper). A histogram with no finite bound says nothing of values: empty.

    >>> buckets({0.1: 2.0, 0.5: 5.0, math.inf: 6.0})
    [(0.0, 0.1, 2.0), (0.1, 0.5, 3.0), (0.5, 0.5, 1.0)]
    """
    bounds = sorted(cumulative)
    finite = [b for b in bounds if math.isfinite(b)]
    if not finite:
        return []
    found = []
    below, lower = 0.0, min(0.0, finite[0])
    for bound in bounds:
        count = max(below, cumulative[bound])
        upper = bound if math.isfinite(bound) else finite[-1]
        if count > below:
            found.append((min(lower, upper), upper, count - below))
        below, lower = count, upper
    return found


def spread(
    cumulative: Mapping[float, float],
    unit_seconds: float = 1.0,
    units_per_request: int = UNITS_PER_REQUEST,
) -> sketch.LatencySketch:
    """The sketch of the observations in ``cumulative`` (counts by upper bound, in
    ``unit_seconds``; see ``buckets``), ``units_per_request`` counts for each.

    >>> s = spread({0.1: 2.0, 0.5: 6.0, math.inf: 6.0})  # histogram_quantile(0.75): 0.35
    >>> s.count // UNITS_PER_REQUEST, round(s.quantile(0.75), 2)
    (6, 0.35)
    """
    bins: dict[int, int] = {}
    zero_count = 0
    for lower, upper, count in buckets(cumulative):
        units = round(count * units_per_request)
        zero_count += _spread_one(lower * unit_seconds, upper * unit_seconds, units, bins)
    return sketch.LatencySketch.from_bins(bins, zero_count)


def _spread_one(lower: float, upper: float, units: int, bins: dict[int, int]) -> int:
    """Add ``units`` counts spread evenly over ``(lower, upper]`` into ``bins``; returns those
    below the smallest binned value (the sketch's ``zero_count``)."""
    if units <= 0 or upper < sketch.MIN_BINNED_VALUE:
        return max(units, 0)
    if upper <= lower:  # a point: the +Inf bucket at the highest bound
        index = int(sketch.bin_index(upper))
        bins[index] = bins.get(index, 0) + units
        return 0
    width = upper - lower
    start = max(lower, sketch.MIN_BINNED_VALUE)
    first, last = int(sketch.bin_index(start)), int(sketch.bin_index(upper))
    indices = np.arange(first, last + 1)
    edges = np.minimum(np.power(sketch.GAMMA, indices.astype(np.float64)), upper)
    edges[-1] = upper
    # the cumulative units at each bin's upper edge, rounded: the total stays exact and every
    # bin's share is within one unit of its even share
    reached = np.floor(units * (edges - lower) / width + 0.5).astype(np.int64)
    reached[-1] = units
    before = math.floor(units * (start - lower) / width + 0.5)
    counts = np.diff(reached, prepend=before)
    for index, count in zip(indices.tolist(), counts.tolist(), strict=True):
        if count > 0:
            bins[index] = bins.get(index, 0) + count
    return before
