"""``simulator.pushes``: reports taken at push times and applied in a batch leave the adapter's
store exactly as reports built one by one with the push client's sketch would."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from adapter.config import StoreConfig
from adapter.report import (
    CONCURRENCY,
    QUEUE_DEPTH,
    REQUESTS_SHED,
    SERVICE_TIME,
    WORKER_SLOTS,
    Report,
)
from adapter.resources import PodRef
from adapter.sketch import LatencySketch
from adapter.store import Store
from simulator.pushes import PodPusher, Pushes
from tests.unit.test_store_provider import as_sketch


class _Pod:
    """What a pusher reads of a pod: its identity, gauges and latencies (scripted), its slots,
    the requests it shed (one more each report) and its service times (half the latencies)."""

    slots = 4

    def __init__(self, name: str, reports: Iterator[tuple[tuple[float, float], list[float]]]):
        self.name, self.uid = name, f"uid-{name}"
        self._reports = reports
        self._latencies: list[float] = []
        self.shed = 0

    def take_mean_gauges(self, now: float) -> tuple[float, float]:
        gauges, self._latencies = next(self._reports)
        self.shed += 1
        return gauges

    def take_latencies(self) -> list[float]:
        return self._latencies

    def take_service_times(self) -> list[float]:
        return [latency / 2 for latency in self._latencies]


def service_window(store: Store, name: str) -> tuple[dict[int, int], int]:
    view = store.get(PodRef("ml", name)).sketch_window(SERVICE_TIME)
    assert view is not None
    low, band = view.band
    return {low + i: count for i, count in enumerate(band) if count}, view.zero_count


def scripted(rng: np.random.Generator, count: int) -> list[tuple[tuple[float, float], list[float]]]:
    reports = []
    for index in range(count):
        size = int(rng.integers(0, 40))
        latencies = rng.lognormal(np.log(0.05), 1.0, size).tolist()
        if index % 5 == 1:
            latencies += [0.0, 1e-12]  # below the smallest bin: zero_count
        gauges = (float(rng.uniform(0, 9)) + 1e-4, float(rng.uniform(0, 9)))
        reports.append((gauges, latencies if index % 7 else []))
    return reports


def test_batched_reports_leave_the_store_as_one_by_one_reports() -> None:
    rng = np.random.default_rng(2)
    config = StoreConfig(window_seconds=5.0)
    batched, direct = Store(config), Store(config)
    pushes = Pushes(batched)
    scripts = {name: scripted(rng, 12) for name in ("a", "b", "c")}
    pushers = {
        name: PodPusher(_Pod(name, iter(script)), "ml", {"app": "m"}, "m")  # type: ignore[arg-type]
        for name, script in scripts.items()
    }
    everything: list[float] = []
    for step in range(12):
        for offset, (name, script) in enumerate(scripts.items()):
            now = step * 1.0 + offset * 0.3
            pushes.take(now, pushers[name])
            (queue, concurrency), latencies = script[step]
            latency = as_sketch(latencies)
            everything += latencies
            direct.apply(
                Report(
                    PodRef("ml", name),
                    f"uid-{name}",
                    step + 1,
                    owner=None,
                    gauges={
                        QUEUE_DEPTH: round(queue, 3),
                        CONCURRENCY: round(concurrency, 3),
                        WORKER_SLOTS: 4.0,
                        REQUESTS_SHED: float(step + 1),
                    },
                    latency_bins=latency.bins,
                    latency_zero_count=latency.zero_count,
                    sketches={SERVICE_TIME: as_sketch([v / 2 for v in latencies])},
                ),
                now,
            )
        if step % 4 == 3:
            pushes.flush()  # as at an HPA sync
            for name in scripts:
                ours, theirs = batched.get(PodRef("ml", name)), direct.get(PodRef("ml", name))
                assert ours is not None and theirs is not None
                assert ours.window_bins == theirs.window_bins
                assert ours.window_zero_count == theirs.window_zero_count
                assert service_window(batched, name) == service_window(direct, name)
                assert ours.completed_requests() == theirs.completed_requests()
                assert (ours.gauges, ours.last_seq, ours.last_seen) == (
                    theirs.gauges,
                    theirs.last_seq,
                    theirs.last_seen,
                )
                assert ours.owner is not None and ours.owner.name == "m"
    assert pushes.latencies() == LatencySketch.from_values(everything)
    assert pushes.latencies().quantile(0.99) == pytest.approx(
        np.quantile(everything, 0.99), rel=0.01
    )
