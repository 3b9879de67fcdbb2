"""Small statistics for benchmark samples: medians, percentiles, ratios of run medians."""

from __future__ import annotations

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
