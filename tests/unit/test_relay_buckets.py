"""Histogram buckets into sketch bins: the sketch answers what ``histogram_quantile`` answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adapter.client import buckets
from adapter.prometheus.histogram import bucket_quantile
from adapter.sketch import RELATIVE_ACCURACY, LatencySketch

VLLM_E2E = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
TGI = tuple(0.0001 * 1.5**k for k in range(1, 36))
QUANTILES = (0.5, 0.9, 0.95, 0.99)


def cumulative(values: np.ndarray, bounds: tuple[float, ...]) -> dict[float, float]:
    """What a Prometheus histogram with ``bounds`` holds after observing ``values``."""
    return {b: float(np.sum(values <= b)) for b in (*bounds, math.inf)}


@pytest.mark.parametrize(
    ("counts", "read"),
    [
        ({0.1: 2.0, 0.5: 5.0, math.inf: 6.0}, [(0.0, 0.1, 2.0), (0.1, 0.5, 3.0), (0.5, 0.5, 1.0)]),
        ({0.5: 3.0, 0.1: 2.0, math.inf: 3.0}, [(0.0, 0.1, 2.0), (0.1, 0.5, 1.0)]),
        ({0.1: 4.0, 0.5: 3.0, math.inf: 5.0}, [(0.0, 0.1, 4.0), (0.5, 0.5, 1.0)]),  # monotonic
        ({0.0: 2.0, 1.0: 3.0, math.inf: 3.0}, [(0.0, 0.0, 2.0), (0.0, 1.0, 1.0)]),
        ({math.inf: 7.0}, []),
        ({0.1: 0.0, math.inf: 0.0}, []),
    ],
)
def test_buckets_are_read_as_histogram_quantile_reads_them(counts, read) -> None:
    assert buckets.buckets(counts) == read


def test_every_request_becomes_the_same_number_of_counts() -> None:
    counts = {0.1: 3.0, 0.2: 3.0, 1.0: 10.0, math.inf: 11.0}
    spread = buckets.spread(counts)
    assert spread.count == 11 * buckets.UNITS_PER_REQUEST
    # nothing below the first bucket's even share, nothing above the highest finite bound
    assert spread.quantile(1.0) == pytest.approx(1.0, rel=RELATIVE_ACCURACY)
    assert buckets.spread(counts, unit_seconds=1e-3).quantile(1.0) == pytest.approx(
        1e-3, rel=RELATIVE_ACCURACY
    )
    assert buckets.spread({}).count == 0


def test_counts_are_spread_evenly_inside_a_bucket() -> None:
    """Each sketch bin inside (1, 2] holds its share of the bucket by width, within a count."""
    spread = buckets.spread({1.0: 0.0, 2.0: 100.0, math.inf: 100.0})
    edges = np.power((1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY), spread.indices - 1.0)
    upper = np.minimum(edges * (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY), 2.0)
    share = 100 * buckets.UNITS_PER_REQUEST * (upper - np.maximum(edges, 1.0))
    assert np.all(np.abs(spread.counts - share) <= 1)


@pytest.mark.parametrize("seed", range(40))
def test_pooled_over_time_the_sketch_answers_histogram_quantile(seed: int) -> None:
    """Intervals of a few requests each, spread one by one and merged as the adapter merges
    them, answer every quantile within the sketch's 1 % of ``histogram_quantile`` on the
    intervals' buckets summed."""
    rng = np.random.default_rng(seed)
    bounds = (
        (VLLM_E2E, TGI)[seed % 2] if seed % 3 else tuple(np.exp(np.sort(rng.uniform(-6, 3, 12))))
    )
    total: dict[float, float] = dict.fromkeys((*bounds, math.inf), 0.0)
    sketches = []
    for _ in range(int(rng.integers(1, 30))):
        values = rng.lognormal(rng.uniform(-3, 1), rng.uniform(0.2, 1.5), int(rng.integers(0, 20)))
        counts = cumulative(values, bounds)
        for bound, count in counts.items():
            total[bound] += count
        sketches.append(buckets.spread(counts))
    if not total[math.inf]:
        return
    pooled = LatencySketch.merge_all(sketches)
    for q in QUANTILES:
        assert pooled.quantile(q) == pytest.approx(
            bucket_quantile(q, total), rel=RELATIVE_ACCURACY
        ), q
