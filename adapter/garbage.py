"""Python's cyclic garbage collector in the server: its pauses measured, and kept short.

A collection stops the event loop for as long as it takes to scan the objects of the
generations it collects, so a full collection over a large heap is a pause in every query that
waits behind it. Two things keep the pauses short:
- ``freeze_startup_objects``: once the server is set up, everything made so far (modules,
  classes, the application, the certificates...) is moved to the permanent generation, which
  collections never scan again (``gc.freeze``, meant for this);
- ``GENERATION0_THRESHOLD``: the youngest generation is collected after this many new objects
  rather than 700. The objects of the requests in progress when a young collection runs
  survive it and are promoted; so ten times fewer young collections promote about ten times
  fewer objects, and the middle and full collections they trigger, the long pauses, become
  that much rarer. Measured under a push storm (docs/benchmarks.md): the collector's CPU time
  fell about tenfold, at the price of a longer young collection.
And the push path makes no object that outlives the push (``Store`` changes a pod's arrays in
place), so a steady fleet does not feed the older generations either.
``Pauses`` measures every collection (``gc.callbacks``), for ``adapter_gc_pause_seconds``.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

GENERATION0_THRESHOLD = 7000
"""Allocations minus deallocations of tracked objects between two young collections (700 by
default); the older generations keep CPython's default thresholds (10 each)."""
PAUSE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
"""Upper bounds (seconds) of the pause histogram."""


def freeze_startup_objects() -> int:
    """Collect once, raise the young generation's threshold, and move every object that exists
    now to the permanent generation; returns how many were frozen. Call once, when the server
    is set up and about to serve."""
    gc.collect()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GENERATION0_THRESHOLD, older, oldest)
    gc.freeze()
    return gc.get_freeze_count()


class Pauses:
    """How long each collection took, by generation: counts per ``PAUSE_BUCKETS`` bucket (the
    last one above them all), their sum, and the longest, in wall time (what a waiting request
    feels); and the CPU time they took (wall time also counts the process being preempted)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._started = (0.0, 0.0)
        self.counts = {generation: [0] * (len(PAUSE_BUCKETS) + 1) for generation in (0, 1, 2)}
        self.seconds = {generation: 0.0 for generation in (0, 1, 2)}
        self.longest = {generation: 0.0 for generation in (0, 1, 2)}
        self.cpu_seconds = {generation: 0.0 for generation in (0, 1, 2)}

    def observe(self, phase: str, info: dict[str, Any]) -> None:
        """The ``gc.callbacks`` hook: ``start`` and ``stop`` of each collection."""
        if phase == "start":
            self._started = (self._clock(), self._cpu_clock())
            return
        seconds = self._clock() - self._started[0]
        generation = info["generation"]
        self.counts[generation][bisect.bisect_left(PAUSE_BUCKETS, seconds)] += 1
        self.seconds[generation] += seconds
        self.longest[generation] = max(self.longest[generation], seconds)
        self.cpu_seconds[generation] += self._cpu_clock() - self._started[1]

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Measure every collection during the block."""
        gc.callbacks.append(self.observe)
        try:
            yield
        finally:
            gc.callbacks.remove(self.observe)

    async def lifetime(self, app: object) -> AsyncIterator[None]:
        """A ``cleanup_ctx``: record while the application runs."""
        with self.recording():
            yield
