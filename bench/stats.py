"""Small statistics for benchmark samples: medians, percentiles, ratios, growth with size."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    return float(np.median(values)) if len(values) else float("nan")


def percentile(values: Sequence[float], percent: float) -> float:
    """The ``percent``-th percentile (numpy's linear method); NaN for no values."""
    return float(np.percentile(values, percent)) if len(values) else float("nan")


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p90 and p99 of durations in seconds, as milliseconds."""
    return {
        "median_ms": median(seconds) * 1000,
        "p90_ms": percentile(seconds, 90) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "samples": len(seconds),
    }


def ratio(ours: float, baseline: float) -> float:
    """``ours / baseline``; NaN when the baseline is zero or missing."""
    return ours / baseline if baseline else float("nan")


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of ``y = slope * x + intercept``: a cost's part that
    grows with size and its fixed part."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("a line needs two or more (x, y) pairs")
    slope, intercept = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(slope), float(intercept)


def growth_exponent(x1: float, y1: float, x2: float, y2: float) -> float:
    """``k`` in ``y ~ x**k`` between two sizes: 1 for a linear cost, about 1.1 for ``n log n``
    over a tenfold step, 2 for quadratic; NaN for a non-positive value."""
    if min(x1, y1, x2, y2) <= 0 or x1 == x2:
        return float("nan")
    return math.log(y2 / y1) / math.log(x2 / x1)
