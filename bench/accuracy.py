"""Quantile accuracy: ``adapter.sketch.LatencySketch`` against ``numpy.quantile`` on raw samples.

For each distribution, relative error ``|sketch - exact| / exact`` at p50, p90, p99 and p99.9:

- *single pod*: one sketch of ``samples`` latencies (a busy pod's 30 s window);
- *merged*: ``pods`` pods x ``slices`` 1 s slices, each its own sketch of ``samples / (pods *
  slices)`` latencies, every pod with its own scale (0.5x to 2x), merged bin-wise as the adapter
  does for a Deployment's p99, against the exact quantile of all samples pooled.

The exact reference is ``numpy.quantile`` (its default ``linear`` method), which the sketch
follows. For the merged case the naive aggregate an adapter without mergeable sketches would
serve, the mean of the per-pod quantiles, is shown beside it. Each cell is the worst over
``runs`` seeds. Target (DESIGN.md): within 1 %.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from adapter.sketch import LatencySketch
from bench import stats

TARGET_PERCENT = 1.0
QUANTILES = (0.5, 0.9, 0.99, 0.999)

Draw = Callable[[np.random.Generator, int, float], np.ndarray]
"""(rng, how many, the pod's scale) -> latencies in seconds."""


def _bimodal(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    slow = rng.random(n) < 0.1
    fast = rng.lognormal(np.log(0.02 * scale), 0.2, n)
    return np.where(slow, rng.lognormal(np.log(0.8 * scale), 0.3, n), fast)


DISTRIBUTIONS: dict[str, Draw] = {
    "lognormal, median 50 ms, sigma 0.5": lambda r, n, s: r.lognormal(np.log(0.05 * s), 0.5, n),
    "lognormal, median 20 ms, sigma 1.5": lambda r, n, s: r.lognormal(np.log(0.02 * s), 1.5, n),
    "bimodal, 90 % ~20 ms + 10 % ~800 ms": _bimodal,
    "pareto, alpha 1.5, from 10 ms": lambda r, n, s: (r.pareto(1.5, n) + 1.0) * 0.01 * s,
    "exponential, mean 100 ms": lambda r, n, s: r.exponential(0.1 * s, n),
    "uniform, 1-100 ms": lambda r, n, s: r.uniform(0.001, 0.1, n) * s,
    "log-uniform, 100 us - 100 s": lambda r, n, s: np.exp(r.uniform(np.log(1e-4), np.log(100), n)),
}


@dataclass(frozen=True)
class AccuracySettings:
    runs: int = 5
    samples: int = 100_000
    pods: int = 10
    slices: int = 30


def relative_errors(estimates: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """``|estimate - exact| / exact`` elementwise, in percent."""
    return np.abs(estimates - exact) / exact * 100.0


def one_seed(draw: Draw, settings: AccuracySettings, seed: int) -> dict[str, np.ndarray]:
    """Relative errors (percent) at ``QUANTILES``: single, merged, and mean-of-pod-quantiles."""
    rng = np.random.default_rng(seed)
    single = draw(rng, settings.samples, 1.0)
    errors = {
        "single": relative_errors(
            np.array(LatencySketch.from_values(single).quantiles(QUANTILES)),
            np.quantile(single, QUANTILES),
        )
    }
    per_sketch = max(1, settings.samples // (settings.pods * settings.slices))
    pods = [
        [draw(rng, per_sketch, scale) for _ in range(settings.slices)]
        for scale in rng.uniform(0.5, 2.0, settings.pods)
    ]
    merged = LatencySketch.merge_all(
        LatencySketch.from_values(s) for slices in pods for s in slices
    )
    pooled = np.concatenate([s for slices in pods for s in slices])
    exact = np.quantile(pooled, QUANTILES)
    errors["merged"] = relative_errors(np.array(merged.quantiles(QUANTILES)), exact)
    naive = np.mean([np.quantile(np.concatenate(slices), QUANTILES) for slices in pods], axis=0)
    errors["mean of per-pod quantiles"] = relative_errors(naive, exact)
    return errors


def run(settings: AccuracySettings, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Every distribution over ``runs`` seeds; the worst error per cell."""
    table: dict[str, dict[str, list[float]]] = {}
    for name, draw in DISTRIBUTIONS.items():
        per_seed = [one_seed(draw, settings, seed) for seed in range(settings.runs)]
        table[name] = {
            kind: np.max([errors[kind] for errors in per_seed], axis=0).tolist()
            for kind in per_seed[0]
        }
        log(
            f"  accuracy {name}: worst single {max(table[name]['single']):.3f} %,"
            f" merged {max(table[name]['merged']):.3f} %"
        )
    return summarize(settings, table)


def summarize(
    settings: AccuracySettings, table: dict[str, dict[str, list[float]]]
) -> dict[str, Any]:
    """The figure (the worst cell of single and merged) and the table as Markdown."""
    worst = max(max(cells["single"] + cells["merged"]) for cells in table.values())
    header = " | ".join(f"p{q * 100:g}" for q in QUANTILES)
    lines = [
        f"Relative error in %, worst of {settings.runs} seeds ({settings.samples:,} samples;"
        f" merged = {settings.pods} pods x {settings.slices} slices of"
        f" {settings.samples // (settings.pods * settings.slices):,} samples, pod scales"
        " 0.5x-2x):",
        "",
        f"| distribution | aggregate | {header} |",
        "|---|---|" + "---:|" * len(QUANTILES),
    ]
    for name, cells in table.items():
        for kind, errors in cells.items():
            values = " | ".join(f"{e:.3f}" for e in errors)
            lines.append(f"| {name} | {kind} | {values} |")
    return {
        "name": "quantile accuracy, worst relative error (sketch vs numpy.quantile)",
        "unit": "%",
        "ours": worst,
        "baseline": None,
        "ratio": None,
        "target": f"<= {TARGET_PERCENT:g} %",
        "met": worst <= TARGET_PERCENT,
        "table_percent": table,
        "quantiles": list(QUANTILES),
        "settings": settings.__dict__,
        "markdown": lines,
        "median_cell_percent": stats.median(
            [e for cells in table.values() for e in cells["single"] + cells["merged"]]
        ),
    }
