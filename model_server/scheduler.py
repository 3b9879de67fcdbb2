"""Worker slots with a FIFO queue in front, optional dynamic batching, and load shedding.

A slot is what a GPU batch slot is to a real server: ``max_concurrency`` of them serve at once, and
everything else waits in arrival order. A request arriving to ``max_queue`` waiting requests is
shed (``Shed``). With ``max_batch_size`` > 1 a free slot takes the oldest waiting request, then
gathers more until the batch is full or ``batch_timeout_seconds`` after that request's arrival,
and serves them as one batch.

The gauges follow the metric catalog: ``queue_depth`` counts requests waiting for a slot,
``concurrency`` those waiting plus those in a slot.

``PreciseSleeper`` is what makes the ``simulated`` mode honest: ``asyncio.sleep`` wakes late (timer
granularity and loop latency, about 0.8 ms here), so it learns the mean lateness and sleeps that
much less, and pays back what error remains on the next sleeps, keeping the average time a slot is
held equal to the drawn service time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

Execute = Callable[[np.ndarray, int], Awaitable[np.ndarray]]
"""Serve a stacked batch of rows made of ``n`` requests; returns the stacked outputs."""


class Shed(Exception):
    """The queue is full: the request is refused (503 with Retry-After)."""


class PreciseSleeper:
    """Sleeps whose mean length matches the request, by compensating the loop's lateness.

    Two corrections, both shared by every slot using the sleeper: ``lateness_seconds`` is a running
    estimate of how late ``asyncio.sleep`` wakes, taken off every sleep; what error remains (the
    timer's millisecond steps, a stall when the machine is busy) is carried in ``debt_seconds``
    and taken off the next sleeps, so the total time slept stays within about one sleep's error of
    the total requested instead of drifting with the estimate. Setting ``lateness_seconds``,
    ``GAIN`` and ``MAX_DEBT_SECONDS`` to 0 gives plain ``asyncio.sleep``.
    """

    GAIN = 0.05
    MAX_DEBT_SECONDS = 0.05
    """Error beyond this (an overloaded loop, not timer noise) is not paid back."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.lateness_seconds = 0.0008
        """Current estimate of how late ``asyncio.sleep`` wakes."""
        self.debt_seconds = 0.0
        """Time slept beyond the requests so far, to take off the next sleeps (< 0: owed)."""

    async def sleep(self, seconds: float) -> float:
        """Sleep about ``seconds``; returns how long it really took."""
        started = self._clock()
        # Take over as much of the debt as this sleep can absorb; a negative debt lengthens it.
        claim = min(self.debt_seconds, max(0.0, seconds - self.lateness_seconds))
        self.debt_seconds -= claim
        target = seconds - claim
        await asyncio.sleep(max(0.0, target - self.lateness_seconds))
        took = self._clock() - started
        error = took - target
        limit = self.MAX_DEBT_SECONDS
        self.debt_seconds = min(limit, max(-limit, self.debt_seconds + error))
        if target > self.lateness_seconds:
            # An integral controller: the mean error of the compensated sleeps goes to zero.
            self.lateness_seconds = max(0.0, self.lateness_seconds + self.GAIN * error)
        return took


@dataclass
class _Job:
    rows: np.ndarray
    arrived: float
    done: asyncio.Future[np.ndarray] = field(repr=False)
    taken: float = 0.0
    """When a slot took it."""
    released: float = 0.0
    """When its slot was free again (its batch done)."""


class Timed(NamedTuple):
    """A request's outputs, and how long it waited for a slot and then held one (seconds)."""

    outputs: np.ndarray
    waited_seconds: float
    held_seconds: float


@dataclass
class SchedulerStats:
    """Totals a server exports; hold and service times in seconds."""

    batches: int = 0
    served: int = 0
    shed: int = 0
    held_seconds: float = 0.0
    """Total time slots were held by batches (from taking the batch to its outputs)."""
    batch_sizes: collections.Counter[int] = field(default_factory=collections.Counter)


class Scheduler:
    """Slots, a FIFO queue and batching around an ``Execute`` callable."""

    def __init__(
        self,
        execute: Execute,
        *,
        max_concurrency: int,
        max_queue: int,
        max_batch_size: int = 1,
        batch_timeout_seconds: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_concurrency < 1 or max_queue < 0 or max_batch_size < 1:
            raise ValueError("max_concurrency and max_batch_size must be >= 1, max_queue >= 0")
        self._execute = execute
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.max_batch_size = max_batch_size
        self.batch_timeout_seconds = batch_timeout_seconds
        self._clock = clock
        self._queue: collections.deque[_Job] = collections.deque()
        self._arrival = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_slots = 0
        self._idle_slots = 0
        self._since = self._taken = clock()
        self._queue_area = self._concurrency_area = 0.0
        self.stats = SchedulerStats()

    def _account(self) -> None:
        """Add the time since the last change, at the current counts, to the running areas
        (call before every change of the queue or the slots)."""
        now = self._clock()
        elapsed = now - self._since
        self._queue_area += elapsed * len(self._queue)
        self._concurrency_area += elapsed * (len(self._queue) + self._in_slots)
        self._since = now

    def take_mean_gauges(self) -> tuple[float, float]:
        """Time-averaged (queue depth, concurrency) since the previous call.

        What a pod pushes: an instant snapshot of a Poisson-driven queue is noise that makes the
        HPA flap, while the mean over the push interval is the load (Little's law: the mean
        concurrency is the arrival rate times the mean latency).
        """
        self._account()
        span = self._since - self._taken
        if span <= 0:
            return float(len(self._queue)), float(self.concurrency)
        means = self._queue_area / span, self._concurrency_area / span
        self._queue_area = self._concurrency_area = 0.0
        self._taken = self._since
        return means

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a slot."""
        return len(self._queue)

    @property
    def concurrency(self) -> int:
        """Requests waiting plus requests in a slot."""
        return len(self._queue) + self._in_slots

    def _update_idle(self) -> None:
        if self._queue or self._in_slots:
            self._idle.clear()
        else:
            self._idle.set()

    async def submit(self, rows: np.ndarray) -> np.ndarray:
        """Queue one request's rows and wait for its outputs. Raises Shed when full."""
        return await self._enqueue(rows).done

    async def submit_timed(self, rows: np.ndarray) -> Timed:
        """``submit``, and how long the request waited for a slot and held it (its service
        time, what ``inference_required_replicas`` sizes slots by)."""
        job = self._enqueue(rows)
        outputs = await job.done
        return Timed(outputs, job.taken - job.arrived, job.released - job.taken)

    def _enqueue(self, rows: np.ndarray) -> _Job:
        # Queued requests that idle slots are about to take do not wait.
        waiting = len(self._queue) - self._idle_slots
        if waiting >= self.max_queue:
            self.stats.shed += 1
            raise Shed(f"{waiting} requests are waiting, the limit is {self.max_queue}")
        job = _Job(rows, self._clock(), asyncio.get_running_loop().create_future())
        self._account()
        self._queue.append(job)
        self._update_idle()
        self._arrival.set()
        return job

    async def wait_idle(self) -> None:
        """Return once nothing waits and nothing is served."""
        await self._idle.wait()

    def _drop_abandoned(self) -> None:
        """Forget queued requests whose clients are gone (their handler was cancelled), so they
        take no slot; the queue's head is where slots look."""
        while self._queue and self._queue[0].done.done():
            self._account()
            self._queue.popleft()
        self._update_idle()

    async def _next_batch(self) -> list[_Job]:
        self._drop_abandoned()
        while not self._queue:
            self._arrival.clear()
            self._idle_slots += 1
            try:
                await self._arrival.wait()
            finally:
                self._idle_slots -= 1
            self._drop_abandoned()
        self._account()
        batch = [self._queue.popleft()]
        batch[0].taken = self._clock()
        self._in_slots += 1
        deadline = batch[0].arrived + self.batch_timeout_seconds
        while len(batch) < self.max_batch_size:
            self._drop_abandoned()
            if self._queue:
                self._account()
                batch.append(self._queue.popleft())
                batch[-1].taken = self._clock()
                self._in_slots += 1
                continue
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            self._arrival.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrival.wait(), remaining)
        return batch

    async def _serve(self, batch: list[_Job]) -> None:
        started = self._clock()
        try:
            outputs = await self._execute(np.concatenate([job.rows for job in batch]), len(batch))
        except Exception as error:  # handed to each waiting request, which answers 500
            for job in batch:
                if not job.done.done():
                    job.done.set_exception(error)
            return
        finally:
            released = self._clock()
            self.stats.held_seconds += released - started
            for job in batch:
                job.released = released
            self._account()
            self._in_slots -= len(batch)
            self.stats.batches += 1
            self.stats.served += len(batch)
            self.stats.batch_sizes[len(batch)] += 1
            self._update_idle()
        start = 0
        for job in batch:
            end = start + len(job.rows)
            if not job.done.done():
                job.done.set_result(outputs[start:end])
            start = end

    async def _slot(self) -> None:
        while True:
            batch = await self._next_batch()
            await self._serve(batch)

    async def run(self) -> None:
        """Run the slots until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self.max_concurrency):
                group.create_task(self._slot())
