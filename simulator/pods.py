"""The Deployment's pods as queues, and the Service that balances requests over them.

A ``Pod`` is the model server's scheduler (``model_server.scheduler``) in virtual time, with
the parameters of ``PodModel``: ``max_concurrency`` worker slots, a FIFO queue in front of them,
a request arriving to ``max_queue`` waiting requests shed, service times drawn from the
``--service-time`` distribution (numpy, in blocks), and with ``max_batch_size`` > 1 dynamic
batching: a free slot takes the oldest waiting request, gathers more until the batch is full or
``batch_timeout_seconds`` after that request's arrival, and holds them for one draw times
``1 + batch_growth * (n - 1)``. The gauges it pushes are the model server's: time-averaged
queue depth (waiting for a slot) and concurrency (waiting plus in a slot) since the previous
push, its slots and the requests it shed so far; the latencies are arrival to response, the
service times how long each request held a slot.

A pod's life: created (``Pending``, for ``startup_delay``: scheduling, image pull, model
load), then ready and in the Service's endpoints, and on scale-down terminating: out of the
endpoints at once, it finishes what it holds (graceful drain) and exits, or is cut at
``drain_timeout_seconds`` with what is left counted as not served.

The ``Service`` sends each request to the ready pod with the fewest requests in flight, ties
broken round-robin: what ``localcluster.balancer`` does, which for pods of equal speed is
join-the-shortest-queue. With no endpoint the request is refused, as the balancer answers 503.

Hot path: an hour at 200 requests/s is 720,000 arrivals and as many completions, so the
per-request methods keep state in slots and local variables, and the accounting for the
gauges is a few sums per request (see ``Pod.take_mean_gauges``).
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from model_server.service_time import ServiceTime
from simulator.events import EventQueue

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"

DRAW_BLOCK = 8192
"""Service times drawn per numpy call."""


@dataclass(frozen=True)
class PodModel:
    """One replica as a queue: the model server's flags where they apply, and its life cycle.

    Defaults are ``model-server``'s own (``--service-time lognormal:20ms,0.5``,
    ``--max-concurrency 4``, ``--max-queue 100``, no batching, ``--drain-timeout 30s``).
    """

    service_time: ServiceTime = field(default_factory=lambda: ServiceTime("lognormal", 0.02, 0.5))
    """Time one request (or one batch, before growth) holds a worker slot."""
    max_concurrency: int = 4
    """Worker slots: requests (or batches) served at once."""
    max_queue: int = 100
    """A request arriving to this many waiting requests is shed."""
    max_batch_size: int = 1
    """Requests per batch; 1 is no batching."""
    batch_timeout_seconds: float = 0.0
    """How long after its oldest request's arrival a batch may wait to fill."""
    batch_growth: float = 0.0
    """A batch of n holds its slot ``1 + batch_growth * (n - 1)`` draws of ``service_time``."""
    startup_delay: ServiceTime = field(default_factory=lambda: ServiceTime("constant", 20.0))
    """Pod created to ready: scheduling, image pull, model load."""
    drain_timeout_seconds: float = 30.0
    """A terminating pod is cut this long after deletion, whatever it still holds."""

    def problems(self) -> list[str]:
        """Every out-of-range field, as flag-worded messages (empty when valid)."""
        found = []
        if self.max_concurrency < 1:
            found.append("--max-concurrency must be at least 1")
        if self.max_queue < 0:
            found.append("--max-queue must not be negative")
        if self.max_batch_size < 1:
            found.append("--max-batch-size must be at least 1")
        if self.batch_timeout_seconds < 0 or self.batch_growth < 0:
            found.append("--batch-timeout-ms and --batch-growth must not be negative")
        if self.service_time.scale_seconds <= 0:
            found.append("--service-time must be longer than 0")
        return found


def service_times(distribution: ServiceTime, rng: np.random.Generator) -> Iterator[float]:
    """An endless stream of draws from ``distribution``, taken from numpy in blocks."""
    while True:
        yield from distribution.sample(rng, DRAW_BLOCK).tolist()


@dataclass
class Tally:
    """What every pod adds to as requests end: the run's SLO accounting, per second.

    ``slow_per_second[s]`` counts requests that arrived in second ``s`` and were served slower
    than the SLO; ``unserved_per_second[s]`` those that were shed, refused or cut.
    """

    slo_seconds: float
    seconds: int

    def __post_init__(self) -> None:
        self.slow_per_second = [0] * (self.seconds + 1)
        self.unserved_per_second = [0] * (self.seconds + 1)

    def unserved(self, arrival: float) -> None:
        """One request that arrived at ``arrival`` was not served."""
        self.unserved_per_second[int(arrival)] += 1


class Pod:
    """One replica: worker slots, a FIFO queue, batching, and its place in the Service.

    Read by the HPA (through ``simulator.deployment``) like the supervisor's pods: ``name``,
    ``created``, ``phase``, ``ready``, ``ready_since``, ``deleting_since``.
    """

    __slots__ = (
        "_batches",
        "_busy",
        "_concurrency_base",
        "_drain_timeout",
        "_gathering",
        "_growth",
        "_held",
        "_latencies",
        "_max_batch",
        "_max_queue",
        "_queue",
        "_queue_base",
        "_schedule",
        "_service_times",
        "_since",
        "_slo",
        "_slots",
        "_slow",
        "_sum_arrivals",
        "_sum_departures",
        "_sum_queued",
        "_sum_taken",
        "_tally",
        "_timeout",
        "admit",
        "created",
        "cut",
        "deleting_since",
        "endpoint_index",
        "exited",
        "name",
        "on_exit",
        "queue_seconds",
        "queued",
        "ready",
        "ready_since",
        "release",
        "shed",
        "uid",
    )

    def __init__(
        self,
        name: str,
        uid: str,
        created: float,
        model: PodModel,
        events: EventQueue,
        draws: Iterator[float],
        tally: Tally,
    ) -> None:
        self.name = name
        self.uid = uid
        self.created = created
        self.ready = False
        self.ready_since: float | None = None
        self.deleting_since: float | None = None
        self.exited: float | None = None
        self.on_exit: Callable[[Pod, float], None] = lambda pod, time: None
        """Called once when the pod is gone (drained, cut, or deleted before it was ready)."""
        self.endpoint_index = -1
        """Its position in the Service's endpoints, -1 when not an endpoint."""
        self.release: Callable[[int], None] = lambda index: None
        """The Service's ``release``, called with ``endpoint_index`` when a request ends."""
        self.shed = self.queued = self.cut = 0
        self.queue_seconds = 0.0
        """The queue depth integrated over the pod's life so far (up to the last take)."""
        self._schedule = events.schedule
        self._service_times = draws
        self._tally = tally
        self._slo = tally.slo_seconds
        self._slow = tally.slow_per_second
        self._slots = model.max_concurrency
        self._max_queue = model.max_queue
        self._max_batch = model.max_batch_size
        self._timeout = model.batch_timeout_seconds
        self._growth = model.batch_growth
        self._drain_timeout = model.drain_timeout_seconds
        self._busy = 0
        """Requests being served (without batching, also the busy slots)."""
        self._batches = 0
        """With batching: slots holding a batch, served or being gathered."""
        self._queue: collections.deque[float] = collections.deque()
        """Arrival times of the requests waiting for a slot, oldest first."""
        self._gathering: list[float] | None = None
        """The batch a slot is filling (arrival times) until it is full or its deadline."""
        self._latencies: list[float] = []
        self._held: list[float] = []
        """Service times (seconds a request holds a slot) of the requests taken since the
        last push, noted when a slot takes them."""
        self.admit: Callable[[float], bool] = (
            self._admit_one if model.max_batch_size == 1 else self._admit_batching
        )
        """A request arrives at ``time``; False when it is shed (the queue is full)."""
        # The gauges' integrals since the last take (see take_mean_gauges).
        self._since = created
        self._queue_base = self._concurrency_base = 0.0
        self._sum_arrivals = self._sum_departures = self._sum_queued = self._sum_taken = 0.0

    # -- what the HPA and the Service read ------------------------------------------------

    @property
    def phase(self) -> str:
        """``Pending`` while starting, ``Running`` once ready (draining too), then gone."""
        if self.exited is not None:
            return SUCCEEDED
        return RUNNING if self.ready or self.deleting_since is not None else PENDING

    @property
    def serving(self) -> bool:
        """Whether the Service sends it requests: ready and not terminating."""
        return self.ready and self.deleting_since is None

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a slot (a batch being gathered holds a slot)."""
        return len(self._queue)

    @property
    def concurrency(self) -> int:
        """Requests waiting plus requests in a slot (served or gathered into a batch)."""
        gathered = len(self._gathering) if self._gathering is not None else 0
        return len(self._queue) + self._busy + gathered

    # -- requests, one at a time -----------------------------------------------------------

    def _admit_one(self, time: float) -> bool:
        if self._busy < self._slots:
            self._busy += 1
            self._sum_arrivals += time
            held = next(self._service_times)
            self._held.append(held)
            self._schedule(time + held, self._finish_one, time)
            return True
        return self._wait(time)

    def _wait(self, time: float) -> bool:
        """No slot free: queue the request, or shed it when ``max_queue`` already wait."""
        if len(self._queue) >= self._max_queue:
            self.shed += 1
            self._tally.unserved(time)
            return False
        self._queue.append(time)
        self.queued += 1
        self._sum_arrivals += time
        self._sum_queued += time
        return True

    def _answer(self, time: float, arrival: float) -> None:
        """Bookkeeping of one answered request (written out again in ``_finish_one``, the
        hottest path)."""
        latency = time - arrival
        self._latencies.append(latency)
        self._sum_departures += time
        if latency > self._slo:
            self._slow[int(arrival)] += 1
        if self.endpoint_index >= 0:
            self.release(self.endpoint_index)

    def _finish_one(self, time: float, arrival: float) -> None:
        """A slot answers its request and takes the next waiting one, if any."""
        if self.exited is not None:
            self._lost(arrival)
            return
        latency = time - arrival
        self._latencies.append(latency)
        self._sum_departures += time
        if latency > self._slo:
            self._slow[int(arrival)] += 1
        if self.endpoint_index >= 0:
            self.release(self.endpoint_index)
        queue = self._queue
        if queue:
            self._sum_taken += time
            held = next(self._service_times)
            self._held.append(held)
            self._schedule(time + held, self._finish_one, queue.popleft())
            return
        self._busy -= 1
        if self.deleting_since is not None and not self._busy:
            self._exit(time)

    def _lost(self, arrival: float) -> None:
        """A request the pod held when it was cut at its drain timeout."""
        self.cut += 1
        self._tally.unserved(arrival)

    # -- requests in batches ---------------------------------------------------------------

    def _admit_batching(self, time: float) -> bool:
        gathering = self._gathering
        if gathering is not None:
            gathering.append(time)
            self._sum_arrivals += time
            if len(gathering) == self._max_batch:
                self._start_batch(time, gathering)
            return True
        if self._batches < self._slots:
            self._sum_arrivals += time
            self._take(time, [time])
            return True
        return self._wait(time)

    def _take(self, time: float, members: list[float]) -> None:
        """A free slot takes ``members`` (oldest first): serve them now, or gather more until
        the batch is full or ``batch_timeout`` after the oldest one's arrival."""
        self._batches += 1
        deadline = members[0] + self._timeout
        if len(members) == self._max_batch or deadline <= time:
            self._start_batch(time, members)
            return
        self._gathering = members
        self._schedule(deadline, self._deadline, members)

    def _deadline(self, time: float, members: list[float]) -> None:
        if self._gathering is members:
            self._start_batch(time, members)

    def _start_batch(self, time: float, members: list[float]) -> None:
        if self._gathering is members:
            self._gathering = None
        self._busy += len(members)
        held = next(self._service_times) * (1.0 + self._growth * (len(members) - 1))
        self._held.extend([held] * len(members))
        self._schedule(time + held, self._finish_batch, members)

    def _finish_batch(self, time: float, members: list[float]) -> None:
        if self.exited is not None:
            for arrival in members:
                self._lost(arrival)
            return
        self._busy -= len(members)
        self._batches -= 1
        for arrival in members:
            self._answer(time, arrival)
        queue = self._queue
        if queue:
            taken = [queue.popleft() for _ in range(min(self._max_batch, len(queue)))]
            self._sum_taken += time * len(taken)
            self._take(time, taken)
        elif self.deleting_since is not None and not self._batches:
            self._exit(time)

    # -- gauges and latencies, as the pod pushes them ---------------------------------------

    def take_mean_gauges(self, now: float) -> tuple[float, float]:
        """Time-averaged (queue depth, concurrency) since the previous call, as the model
        server pushes them.

        The integral over ``(t0, t1]`` of the number of requests present is
        ``t1 * n(t1) - t0 * n(t0)``, less the arrival times and plus the departure times of
        those that came and went in between; so the hot path only adds times to four sums, and
        this reads them and starts over.
        """
        span = now - self._since
        queue, concurrency = len(self._queue), self.concurrency
        if span <= 0:
            return float(queue), float(concurrency)
        queue_area = now * queue - self._queue_base - self._sum_queued + self._sum_taken
        concurrency_area = (
            now * concurrency - self._concurrency_base - self._sum_arrivals + self._sum_departures
        )
        self._restart_integrals(now)
        self.queue_seconds += queue_area
        return max(0.0, queue_area / span), max(0.0, concurrency_area / span)

    def _restart_integrals(self, now: float) -> None:
        self._since = now
        self._queue_base = now * len(self._queue)
        self._concurrency_base = now * self.concurrency
        self._sum_arrivals = self._sum_departures = self._sum_queued = self._sum_taken = 0.0

    def take_service_times(self) -> list[float]:
        """Service times (seconds each request held a slot, its batch's for a batch) of the
        requests slots took since the previous call: the pod's ``service_time`` sketch."""
        held, self._held = self._held, []
        return held

    @property
    def slots(self) -> int:
        """Requests it serves at once: its worker slots times the batch size (batch seats)."""
        return self._slots * self._max_batch

    def take_latencies(self) -> list[float]:
        """Latencies (seconds) of the requests answered since the previous call."""
        latencies, self._latencies = self._latencies, []
        return latencies

    # -- life cycle --------------------------------------------------------------------------

    def become_ready(self, time: float) -> None:
        """Startup is over: ready (the Deployment adds it to the endpoints)."""
        self.ready = True
        self.ready_since = time
        self._restart_integrals(time)

    def terminate(self, time: float) -> None:
        """Deletion: readiness goes false; it finishes what it holds and exits, or is cut
        ``drain_timeout`` later."""
        self.deleting_since = time
        if self.ready:
            self.ready = False
            self.ready_since = time
        if not self.concurrency:
            self._exit(time)
        else:
            self._schedule(time + self._drain_timeout, self._cut)

    def _cut(self, time: float, _: object) -> None:
        """The drain timeout: what still waits is not served, nor what is in a slot (counted
        when its answer would have come)."""
        if self.exited is not None:
            return
        for arrival in [*self._queue, *(self._gathering or ())]:
            self._lost(arrival)
        self._queue.clear()
        self._gathering = None
        self._exit(time)

    def _exit(self, time: float) -> None:
        self.exited = time
        self.on_exit(self, time)


class Service:
    """Least requests in flight over the ready pods, ties round-robin (``localcluster.balancer``).

    ``endpoints`` are the serving pods in creation order (as the balancer lists them),
    ``in_flight`` the requests sent to each and not answered yet. The balancer's rule is
    ``tied[turn % len(tied)]`` over the endpoints with the fewest in flight, ``turn`` counting
    every pick; to find ``tied`` without scanning 50 pods per request, the endpoints are also
    kept in buckets by their count (each bucket in endpoint order), and the lowest non-empty
    bucket is tracked as counts move by one.
    """

    def __init__(self, tally: Tally) -> None:
        self.endpoints: list[Pod] = []
        self.in_flight: list[int] = []
        self._by_count: list[list[int]] = [[]]
        """``_by_count[k]``: the endpoint indices with ``k`` requests in flight, ascending."""
        self._fewest = 0
        self.refused = 0
        """Requests that found no endpoint."""
        self._turn = 0
        self._tally = tally

    def set_endpoints(self, pods: list[Pod]) -> None:
        """The serving pods changed: keep the counts of those that stay."""
        counts = {id(p): self.in_flight[p.endpoint_index] for p in self.endpoints}
        for pod in self.endpoints:
            pod.endpoint_index = -1
        self.endpoints = list(pods)
        self.in_flight = [counts.get(id(p), 0) for p in pods]
        self._by_count = [[] for _ in range(max(self.in_flight, default=0) + 2)]
        for index, (pod, count) in enumerate(zip(pods, self.in_flight, strict=True)):
            pod.endpoint_index = index
            pod.release = self.release
            self._by_count[count].append(index)
        self._fewest = min(self.in_flight, default=0)

    def dispatch(self, time: float) -> None:
        """Send the request arriving at ``time`` to a pod, or refuse it."""
        by_count = self._by_count
        tied = by_count[self._fewest]
        if not tied:
            self.refused += 1
            self._tally.unserved(time)
            return
        index = tied[self._turn % len(tied)]
        self._turn += 1
        if self.endpoints[index].admit(time):
            # the pod moves up a bucket (written out: this runs for every request)
            count = self.in_flight[index] + 1
            self.in_flight[index] = count
            tied.remove(index)
            if count + 1 == len(by_count):
                by_count.append([])
            bisect.insort(by_count[count], index)
            if not tied:
                self._fewest = count

    def release(self, index: int) -> None:
        """Endpoint ``index`` answered a request: it moves down a bucket."""
        by_count = self._by_count
        count = self.in_flight[index]
        by_count[count].remove(index)
        count -= 1
        self.in_flight[index] = count
        bisect.insort(by_count[count], index)
        self._fewest = min(self._fewest, count)
