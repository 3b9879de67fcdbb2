"""``histogram_quantile`` as Prometheus computes it, for buckets the adapter has pooled itself.

A selection too large for one query is split into several; each part answers its pods' bucket
rates summed per ``le``, the adapter adds the parts, and this reads the quantile with the
arithmetic of Prometheus' ``bucketQuantile`` (promql/quantile.go): buckets sorted by upper
bound, equal bounds merged, counts forced monotonic, linear interpolation inside the bucket
that holds rank ``q * total``, the lower edge of the first bucket taken as 0, and the
upper bound of the second-highest bucket for a rank in the ``+Inf`` bucket.

Pure: no I/O.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping


def bucket_quantile(quantile: float, cumulative: Mapping[float, float]) -> float:
    """The ``quantile`` of cumulative bucket counts keyed by upper bound.

    NaN when there is no ``+Inf`` bucket, fewer than two buckets or no observation, as
    Prometheus answers (the caller decides what NaN means).

    >>> bucket_quantile(0.5, {0.1: 2.0, 0.2: 4.0, math.inf: 4.0})
    0.1
    >>> bucket_quantile(0.75, {0.1: 2.0, 0.2: 4.0, math.inf: 4.0})
    0.15000000000000002
    """
    if math.isnan(quantile):
        return math.nan
    if quantile < 0:
        return -math.inf
    if quantile > 1:
        return math.inf
    bounds = sorted(cumulative)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return math.nan
    counts, highest = [], -math.inf
    for bound in bounds:
        highest = max(highest, cumulative[bound])
        counts.append(highest)
    total = counts[-1]
    if total == 0:
        return math.nan
    rank = quantile * total
    index = bisect.bisect_left(counts, rank, hi=len(counts) - 1)
    if index == len(counts) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start, count = 0.0, counts[index]
    if index > 0:
        start = bounds[index - 1]
        count -= counts[index - 1]
        rank -= counts[index - 1]
    return start + (bounds[index] - start) * (rank / count)
