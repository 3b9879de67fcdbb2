"""Tests for model_server.scheduler: FIFO slots, shedding, gauges, batching, and PreciseSleeper.

Real asyncio with a ``Recorder`` as the execute callable: it records each batch, can hold every
batch on an ``asyncio.Event`` the test controls, and tracks how many batches run at once. Moments
are reached by yielding to the loop (``settle``), not by sleeping; only the batching deadlines and
the sleeper accuracy use real (short) sleeps.
"""

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from model_server.scheduler import PreciseSleeper, Scheduler, Shed
from model_server.service_time import ServiceTimeSampler, parse_distribution

COLUMNS = 4


def rows(value: float, count: int = 1) -> np.ndarray:
    return np.full((count, COLUMNS), value, dtype=np.float32)


class Recorder:
    """An ``Execute`` that records batches, waits on ``gate`` and answers ``2 * rows + 1``."""

    def __init__(self, seconds: float = 0.0, failures: list[Exception] | None = None) -> None:
        self.seconds = seconds
        self.failures = failures or []
        self.gate = asyncio.Event()
        self.gate.set()
        self.batches: list[tuple[np.ndarray, int]] = []
        self.started: list[float] = []
        self.durations: list[float] = []
        self.active = 0
        self.max_active = 0

    async def __call__(self, batch: np.ndarray, requests: int) -> np.ndarray:
        started = time.perf_counter()
        self.started.append(started)
        self.batches.append((batch.copy(), requests))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self.gate.wait()
            if self.seconds:
                await asyncio.sleep(self.seconds)
            if self.failures:
                raise self.failures.pop(0)
            return batch * 2 + 1
        finally:
            self.active -= 1
            self.durations.append(time.perf_counter() - started)

    @property
    def served_values(self) -> list[float]:
        """The first value of every request's rows, in the order batches were executed."""
        return [float(value) for batch, _ in self.batches for value in np.unique(batch[:, 0])]

    @property
    def batch_sizes(self) -> list[int]:
        return [requests for _, requests in self.batches]


@contextlib.asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[Scheduler]:
    task = asyncio.create_task(scheduler.run())
    await settle()  # the slots are up and idle, as in a server that has started
    try:
        yield scheduler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settle() -> None:
    """Let every ready task run until all are blocked (a few loop iterations suffice)."""
    for _ in range(20):
        await asyncio.sleep(0)


def submit_all(scheduler: Scheduler, values: list[float], count: int = 1) -> list[asyncio.Task]:
    return [asyncio.create_task(scheduler.submit(rows(value, count))) for value in values]


# --- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_concurrency", "max_queue", "max_batch_size"), [(0, 1, 1), (1, -1, 1), (1, 1, 0)]
)
def test_invalid_limits(max_concurrency, max_queue, max_batch_size):
    with pytest.raises(ValueError, match="must be >= 1"):
        Scheduler(
            Recorder(),
            max_concurrency=max_concurrency,
            max_queue=max_queue,
            max_batch_size=max_batch_size,
        )


# --- slots and the FIFO queue -----------------------------------------------------------------


async def test_one_slot_serves_in_arrival_order():
    recorder = Recorder()
    recorder.gate.clear()
    scheduler = Scheduler(recorder, max_concurrency=1, max_queue=100)
    async with running(scheduler):
        tasks = submit_all(scheduler, [float(i) for i in range(8)])
        await settle()
        assert recorder.served_values == [0.0]  # the rest wait behind the first
        recorder.gate.set()
        outputs = await asyncio.gather(*tasks)
    assert recorder.served_values == [float(i) for i in range(8)]
    assert [float(output[0, 0]) for output in outputs] == [2.0 * i + 1 for i in range(8)]
    assert recorder.batch_sizes == [1] * 8


@pytest.mark.parametrize(
    ("max_concurrency", "max_batch_size"), [(1, 1), (2, 1), (3, 1), (5, 1), (2, 4), (3, 2)]
)
async def test_never_more_batches_than_slots(max_concurrency, max_batch_size):
    recorder = Recorder(seconds=0.002)
    scheduler = Scheduler(
        recorder,
        max_concurrency=max_concurrency,
        max_queue=100,
        max_batch_size=max_batch_size,
    )
    async with running(scheduler):
        outputs = await asyncio.gather(*submit_all(scheduler, [float(i) for i in range(24)]))
    assert recorder.max_active == max_concurrency  # every slot used, never one more
    assert len(outputs) == 24
    assert scheduler.stats.served == 24
    assert max(recorder.batch_sizes) <= max_batch_size


# --- shedding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("burst", [False, True])
@pytest.mark.parametrize(("max_concurrency", "max_queue"), [(1, 1), (1, 2), (2, 3), (3, 0)])
async def test_sheds_when_max_queue_requests_wait(max_concurrency, max_queue, burst):
    recorder = Recorder()
    recorder.gate.clear()
    scheduler = Scheduler(recorder, max_concurrency=max_concurrency, max_queue=max_queue)
    async with running(scheduler):
        # Fill the slots, then the queue: in one burst (requests idle slots are about to take do
        # not count as waiting) or one request at a time.
        values = [float(i) for i in range(max_concurrency + max_queue)]
        if burst:
            accepted = submit_all(scheduler, values)
        else:
            accepted = []
            for value in values:
                accepted += submit_all(scheduler, [value])
                await settle()
        await settle()
        assert (scheduler.queue_depth, scheduler.concurrency) == (
            max_queue,
            max_concurrency + max_queue,
        )
        for attempt in range(1, 3):
            with pytest.raises(Shed, match=f"{max_queue} requests are waiting") as raised:
                await scheduler.submit(rows(-1.0))
            assert f"the limit is {max_queue}" in str(raised.value)
            assert scheduler.stats.shed == attempt
            assert scheduler.queue_depth == max_queue
            assert scheduler.concurrency == max_concurrency + max_queue
        recorder.gate.set()
        await asyncio.gather(*accepted)
        assert -1.0 not in recorder.served_values
        assert scheduler.stats.served == max_concurrency + max_queue
        # Once the queue has drained, requests are accepted again.
        await scheduler.submit(rows(7.0))
    assert scheduler.stats.shed == 2


# --- gauges -----------------------------------------------------------------------------------


async def test_gauges_count_waiting_and_in_slot_requests():
    recorder = Recorder()
    recorder.gate.clear()
    scheduler = Scheduler(recorder, max_concurrency=2, max_queue=100)
    assert (scheduler.queue_depth, scheduler.concurrency) == (0, 0)
    async with running(scheduler):
        first = submit_all(scheduler, [1.0])
        await settle()
        assert (scheduler.queue_depth, scheduler.concurrency) == (0, 1)
        rest = submit_all(scheduler, [2.0, 3.0, 4.0, 5.0])
        await settle()
        assert (scheduler.queue_depth, scheduler.concurrency) == (3, 5)
        assert len(recorder.batches) == 2
        recorder.gate.set()
        await asyncio.gather(*first, *rest)
        assert (scheduler.queue_depth, scheduler.concurrency) == (0, 0)


async def test_requests_gathered_into_a_batch_count_as_in_a_slot():
    recorder = Recorder()
    scheduler = Scheduler(
        recorder, max_concurrency=1, max_queue=100, max_batch_size=4, batch_timeout_seconds=10.0
    )
    async with running(scheduler):
        tasks = submit_all(scheduler, [1.0, 2.0])
        await settle()
        assert recorder.batches == []  # still gathering
        assert (scheduler.queue_depth, scheduler.concurrency) == (0, 2)
        tasks += submit_all(scheduler, [3.0, 4.0])  # fills the batch, which leaves at once
        await asyncio.gather(*tasks)
    assert recorder.batch_sizes == [4]


async def test_wait_idle():
    recorder = Recorder()
    recorder.gate.clear()
    scheduler = Scheduler(recorder, max_concurrency=2, max_queue=100)
    await asyncio.wait_for(scheduler.wait_idle(), 1.0)  # nothing submitted yet
    async with running(scheduler):
        tasks = submit_all(scheduler, [float(i) for i in range(6)])
        await settle()
        waiter = asyncio.create_task(scheduler.wait_idle())
        await settle()
        assert not waiter.done()
        recorder.gate.set()
        await asyncio.wait_for(waiter, 1.0)
        assert (scheduler.concurrency, scheduler.stats.served) == (0, 6)
        await asyncio.gather(*tasks)
        await asyncio.wait_for(scheduler.wait_idle(), 1.0)


# --- dynamic batching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_batch_size", "requests", "sizes"),
    [
        (4, 6, [1, 4, 1]),
        (4, 9, [1, 4, 4]),
        (3, 4, [1, 3]),
        (8, 5, [1, 4]),
        (1, 3, [1, 1, 1]),
    ],
)
async def test_batches_fill_up_to_max_batch_size(max_batch_size, requests, sizes):
    recorder = Recorder()
    recorder.gate.clear()
    scheduler = Scheduler(
        recorder,
        max_concurrency=1,
        max_queue=100,
        max_batch_size=max_batch_size,
        batch_timeout_seconds=0.0,
    )
    async with running(scheduler):
        # The first request goes alone (timeout 0); the rest queue behind it and leave in batches.
        tasks = submit_all(scheduler, [0.0])
        await settle()
        tasks += submit_all(scheduler, [float(i) for i in range(1, requests)])
        await settle()
        recorder.gate.set()
        await asyncio.gather(*tasks)
    assert recorder.batch_sizes == sizes
    assert recorder.served_values == [float(i) for i in range(requests)]  # FIFO across batches
    assert scheduler.stats.batch_sizes == {size: sizes.count(size) for size in set(sizes)}


async def test_each_request_gets_its_own_rows_back():
    row_counts = [1, 3, 2, 1, 4, 2, 1]
    recorder = Recorder()
    recorder.gate.clear()
    scheduler = Scheduler(
        recorder, max_concurrency=1, max_queue=100, max_batch_size=3, batch_timeout_seconds=0.0
    )
    async with running(scheduler):
        tasks = [
            asyncio.create_task(scheduler.submit(rows(float(value), count)))
            for value, count in enumerate(row_counts)
        ]
        await settle()
        recorder.gate.set()
        outputs = await asyncio.gather(*tasks)
    assert recorder.batch_sizes == [3, 3, 1]
    assert [len(batch) for batch, _ in recorder.batches] == [1 + 3 + 2, 1 + 4 + 2, 1]
    for value, (count, output) in enumerate(zip(row_counts, outputs, strict=True)):
        np.testing.assert_array_equal(output, rows(2.0 * value + 1, count))


async def test_a_partial_batch_waits_at_most_the_timeout():
    # The deadline runs from the first request's arrival, not from the latest one's.
    timeout = 0.2
    recorder = Recorder()
    scheduler = Scheduler(
        recorder, max_concurrency=1, max_queue=100, max_batch_size=4, batch_timeout_seconds=timeout
    )
    async with running(scheduler):
        submitted = time.perf_counter()
        first = submit_all(scheduler, [1.0])
        await asyncio.sleep(timeout / 2)
        second = submit_all(scheduler, [2.0])  # joins the batch that is still gathering
        await asyncio.gather(*first, *second)
    waited = recorder.started[0] - submitted
    assert recorder.batch_sizes == [2]
    assert timeout - 0.001 <= waited < timeout * 1.4


async def test_a_full_batch_leaves_without_waiting_for_the_timeout():
    recorder = Recorder()
    scheduler = Scheduler(
        recorder, max_concurrency=1, max_queue=100, max_batch_size=2, batch_timeout_seconds=5.0
    )
    async with running(scheduler):
        submitted = time.perf_counter()
        first = submit_all(scheduler, [1.0])
        await asyncio.sleep(0.01)
        await asyncio.gather(*first, *submit_all(scheduler, [2.0]))
    assert recorder.batch_sizes == [2]
    assert recorder.started[0] - submitted < 1.0


async def test_an_execute_error_reaches_the_whole_batch_and_the_slot_survives():
    error = RuntimeError("GPU on fire")
    recorder = Recorder(failures=[error])
    scheduler = Scheduler(
        recorder, max_concurrency=1, max_queue=100, max_batch_size=3, batch_timeout_seconds=0.0
    )
    async with running(scheduler):
        results = await asyncio.gather(
            *submit_all(scheduler, [0.0, 1.0, 2.0, 3.0]), return_exceptions=True
        )
        assert results[:3] == [error, error, error]
        assert float(results[3][0, 0]) == 7.0
        assert (scheduler.queue_depth, scheduler.concurrency) == (0, 0)
        output = await scheduler.submit(rows(8.0))
    assert float(output[0, 0]) == 17.0
    assert recorder.batch_sizes == [3, 1, 1]
    assert scheduler.stats.batches == 3


async def test_held_seconds_is_the_time_spent_executing():
    recorder = Recorder(seconds=0.004)
    scheduler = Scheduler(recorder, max_concurrency=2, max_queue=100)
    async with running(scheduler):
        await asyncio.gather(*submit_all(scheduler, [float(i) for i in range(10)]))
    executed = sum(recorder.durations)
    assert executed >= 10 * 0.004
    assert executed <= scheduler.stats.held_seconds <= executed * 1.05 + 0.001
    assert scheduler.stats.batches == 10


# --- PreciseSleeper ---------------------------------------------------------------------------

# The bound: the time slept matches the time requested to within 1 % on average. Checks
# compare sums over a couple of hundred sleeps (2.5 s) after a warm-up drawn the same way.
ACCURACY = 0.01
STALL_SECONDS = 0.02


def stall(stalled: list[float]) -> None:
    """Block the event loop, as a busy machine or a slow handler does."""
    stalled.append(time.perf_counter())
    time.sleep(STALL_SECONDS)


async def measure(
    sleeper: PreciseSleeper,
    requests: np.ndarray,
    stalls: frozenset[int] = frozenset(),
    stalled: list[float] | None = None,
) -> np.ndarray:
    """How long each ``sleeper.sleep`` really took, by our own clock; stall during some."""
    took = []
    for index, seconds in enumerate(requests):
        if index in stalls:  # block the loop shortly before the sleep would end
            delay = float(seconds) - 0.003
            asyncio.get_running_loop().call_later(delay, stall, [] if stalled is None else stalled)
        started = time.perf_counter()
        await sleeper.sleep(float(seconds))
        took.append(time.perf_counter() - started)
    return np.array(took)


async def warmed_up(seed: int) -> tuple[PreciseSleeper, np.random.Generator]:
    rng = np.random.default_rng(seed)
    sleeper = PreciseSleeper()
    await measure(sleeper, rng.uniform(0.005, 0.02, 30))
    return sleeper, rng


async def test_precise_sleeper_mean_matches_the_request():
    sleeper, rng = await warmed_up(11)
    requests = rng.uniform(0.005, 0.02, 200)
    took = await measure(sleeper, requests)
    error = took.sum() / requests.sum() - 1
    assert abs(error) < ACCURACY, f"slept {error:+.2%} more than requested"
    assert abs(sleeper.debt_seconds) < 0.005


async def test_precise_sleeper_pays_back_stalls():
    # Three 20 ms stalls near the end, 4 % of the time requested: far beyond the bound unless paid
    # back, and soon enough (an estimate of lateness alone would take tens of sleeps to do it).
    sleeper, rng = await warmed_up(12)
    requests = rng.uniform(0.005, 0.02, 120)
    stalled: list[float] = []
    took = await measure(sleeper, requests, frozenset({95, 105, 115}), stalled)
    assert len(stalled) == 3  # all during the measured sleeps: nothing else yields to the loop
    error = took.sum() / requests.sum() - 1
    assert abs(error) < ACCURACY, f"slept {error:+.2%} more than requested"


async def test_uncompensated_sleeps_overshoot():
    sleeper = PreciseSleeper()
    sleeper.lateness_seconds = 0.0
    sleeper.GAIN = 0.0
    sleeper.MAX_DEBT_SECONDS = 0.0
    requests = np.random.default_rng(13).uniform(0.005, 0.02, 30)
    took = await measure(sleeper, requests)
    assert (took >= requests).all()
    assert statistics.mean(took - requests) > 0.0001
    assert (sleeper.lateness_seconds, sleeper.debt_seconds) == (0.0, 0.0)


async def test_slots_are_held_for_the_drawn_service_time():
    # The simulated mode as the server runs it: slots share one sleeper and one seeded sampler.
    sleeper, _ = await warmed_up(14)
    sampler = ServiceTimeSampler(
        parse_distribution("exponential:10ms"), np.random.default_rng(14), batch_growth=0.5
    )
    drawn: list[float] = []

    async def simulate(batch: np.ndarray, requests: int) -> np.ndarray:
        seconds = sampler.draw(requests)
        drawn.append(seconds)
        await sleeper.sleep(seconds)
        return batch

    scheduler = Scheduler(
        simulate, max_concurrency=4, max_queue=1000, max_batch_size=2, batch_timeout_seconds=0.0
    )
    async with running(scheduler):
        await asyncio.gather(*submit_all(scheduler, [float(i) for i in range(300)]))
    assert scheduler.stats.batches == len(drawn) == 150
    error = scheduler.stats.held_seconds / sum(drawn) - 1
    assert abs(error) < ACCURACY, f"slots held {error:+.2%} longer than drawn"


async def test_an_abandoned_queued_request_takes_no_slot() -> None:
    served: list[float] = []
    gate = asyncio.Event()

    async def execute(rows: np.ndarray, requests: int) -> np.ndarray:
        served.append(float(rows[0, 0]))
        await gate.wait()
        return rows

    scheduler = Scheduler(execute, max_concurrency=1, max_queue=10)
    runner = asyncio.ensure_future(scheduler.run())
    try:
        first = asyncio.ensure_future(scheduler.submit(np.full((1, 1), 1.0)))
        abandoned = asyncio.ensure_future(scheduler.submit(np.full((1, 1), 2.0)))
        third = asyncio.ensure_future(scheduler.submit(np.full((1, 1), 3.0)))
        await asyncio.sleep(0.01)
        abandoned.cancel()  # the client went away while it waited
        gate.set()
        await asyncio.gather(first, third)
        assert served == [1.0, 3.0]
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_mean_gauges_integrate_over_time() -> None:
    now = [0.0]
    gate = asyncio.Event()

    async def execute(rows: np.ndarray, requests: int) -> np.ndarray:
        await gate.wait()
        return rows

    scheduler = Scheduler(execute, max_concurrency=1, max_queue=10, clock=lambda: now[0])
    runner = asyncio.ensure_future(scheduler.run())
    try:
        assert scheduler.take_mean_gauges() == (0.0, 0.0)
        first = asyncio.ensure_future(scheduler.submit(np.zeros((1, 1))))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the slot takes it: concurrency 1, queue 0
        now[0] = 1.0
        second = asyncio.ensure_future(scheduler.submit(np.zeros((1, 1))))
        await asyncio.sleep(0)  # waits: concurrency 2, queue 1
        now[0] = 4.0
        # 0..1 s: queue 0, concurrency 1; 1..4 s: queue 1, concurrency 2.
        assert scheduler.take_mean_gauges() == (0.75, 1.75)
        now[0] = 6.0
        assert scheduler.take_mean_gauges() == (1.0, 2.0)
        gate.set()
        await asyncio.gather(first, second)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
