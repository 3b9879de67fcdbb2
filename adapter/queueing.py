"""The queueing model behind ``inference_required_replicas``: how many pods meet a latency SLO.

A Deployment is modelled as ``n`` pods of ``c`` worker slots each, behind a balancer, fed by
requests arriving at rate ``lambda`` (per second) whose service times ``S`` (seconds a request
holds a slot) have mean ``1/mu`` and squared coefficient of variation ``Cs^2 = Var S / (E S)^2``.
Each pod serves its own FIFO queue. The offered load is ``a = lambda / mu`` erlangs (slots busy on
average) and the utilisation ``rho = a / (n c)``. The time a request spends in the system is
``T = W + S``: its wait ``W`` for a slot, then its own service, independent of that wait (FIFO).

The wait, in three layers, each a function here:

1. **Erlang C** (:func:`erlang_c`): the probability ``C(m, a)`` that an arrival waits in M/M/m,
   from the Erlang B recursion on ``y = 1/B``: ``y(k) = 1 + (k / a) y(k - 1)``. No factorial, no
   overflow, exact to rounding for thousands of slots (see :func:`erlang_b` for large loads).
2. **The balancer** (:class:`Balancing`, :func:`waiting_time`): the wait is an atom at 0 of weight
   ``1 - P(wait)`` and, given a wait, an exponential tail: ``P(W > t) = P(wait) exp(-r t)``.
   In M/M/m this is exact, with ``P(wait) = C(m, a)`` and ``r = m mu - lambda``. For the
   join-the-shortest-queue balancer of n pods the derivation is in :func:`waiting_time`.
3. **Service-time variability** (Allen-Cunneen): the tail's mean ``1/r`` is scaled by
   ``(Ca^2 + Cs^2) / 2`` (``Ca^2 = 1`` for Poisson arrivals), so deterministic service
   (``Cs^2 = 0``) waits half as long as exponential service, as Pollaczek-Khinchine gives for
   one slot. ``P(wait)`` stays Erlang C's.

The time in system (:func:`time_in_system_survival`) convolves that wait with the service-time
distribution as measured (:class:`ServiceTime`, e.g. the bins of a pushed sketch), exactly:

    ``P(T > t) = P(S > t) + P(wait) * sum over s_i <= t of w_i exp(-r (t - s_i))``

for service times ``s_i`` of weights ``w_i``. :func:`required_replicas` is the smallest ``n`` with
``P(T > SLO) <= 1 - q``, with the guards stated there. Closed forms for exponential service
(:func:`exponential_time_in_system_survival`) serve the M/M/c checks.

Pure core: numpy and :mod:`adapter.sketch` only; no I/O, no clock, no logging. Errors: a
:class:`MissingInput` (a ``ValueError``) names the push field the model lacks, for a 404; any other
``ValueError`` is an argument out of range.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from adapter import sketch

__all__ = [
    "MAX_OFFERED_LOAD",
    "MIN_WAITING_SHARE",
    "Balancing",
    "Basis",
    "MissingInput",
    "ReplicaEstimate",
    "ServiceTime",
    "Waiting",
    "erlang_b",
    "erlang_c",
    "exponential_time_in_system_survival",
    "required_replicas",
    "time_in_system_survival",
    "waiting_time",
]

MAX_OFFERED_LOAD: float = 1e6
"""The largest offered load (erlangs, slots busy on average) the model accepts: beyond any
inference fleet, and where :func:`erlang_b` would take more than a few milliseconds."""

MIN_WAITING_SHARE: float = 0.1
"""The share of the miss budget ``1 - q`` that waiting may always use (see
:func:`required_replicas`): when the service time alone leaves less, replicas stop where more of
them would not help."""

_WARM_START_STEPS = 40.0
"""Steps of the Erlang B recursion, beyond ``10 sqrt(a)``, run from an approximate start (see
:func:`erlang_b`): enough that the start's error has shrunk below float rounding."""


class MissingInput(ValueError):
    """The model cannot run: the pods did not push ``missing`` (a push-contract field name).

    The provider answers a 404 ``Status`` with this message, as for any metric without data.
    """

    def __init__(self, missing: str, message: str) -> None:
        super().__init__(message)
        self.missing = missing


def erlang_b(servers: int, offered_load: float) -> float:
    """Return the Erlang B blocking probability ``B(servers, a)`` of an M/M/m/m loss system.

    Computed with the recursion ``y(k) = 1 + (k / a) y(k - 1)`` on ``y = 1/B``, ``y(0) = 1``, which
    neither overflows (no ``a**m / m!``) nor loses precision: an error in ``y`` shrinks by ``k/a``
    per step while ``k < a`` and never grows relative to ``y`` after. That is also why a large load
    may start late: from ``k0 = min(servers, a) - 10 sqrt(a) - 40`` with the overload value
    ``y(k0) ~ a / (a - k0)``, whose error the steps up to ``a`` shrink by ``exp(-50)`` or more; so
    the cost is ``O(sqrt(a))`` steps plus those beyond ``a``, and it stops once ``B`` underflows
    to 0.0.

    Raises ``ValueError`` for fewer than 0 servers, a negative or non-finite load, or a load above
    :data:`MAX_OFFERED_LOAD`.

    >>> round(erlang_b(10, 4.461), 4)  # the 1 % column of the Erlang B table
    0.01
    """
    _check_servers(servers)
    a = _checked_load(offered_load)
    if servers == 0:
        return 1.0
    if a == 0.0:
        return 0.0
    return 1.0 / _inverse_erlang_b(servers, a)


def erlang_c(servers: int, offered_load: float) -> float:
    """Return the Erlang C probability ``C(servers, a)`` that an arrival waits in M/M/m.

    ``C = 1 / (rho + (1 - rho) / B)`` with ``rho = a / servers`` and ``B`` from :func:`erlang_b`;
    1.0 when ``a >= servers`` (no steady state: the queue grows, everyone waits), 0.0 for no load.
    Raises ``ValueError`` as :func:`erlang_b` does, and for 0 servers.

    >>> round(erlang_c(2, 1.5), 6)  # 9/14
    0.642857
    """
    _check_servers(servers)
    a = _checked_load(offered_load)
    if servers == 0:
        raise ValueError("Erlang C needs at least one server")
    if a >= servers:
        return 1.0
    if a == 0.0:
        return 0.0
    rho = a / servers
    return 1.0 / (rho + (1.0 - rho) * _inverse_erlang_b(servers, a))


def _inverse_erlang_b(servers: int, a: float) -> float:
    """``1 / B(servers, a)`` for ``servers >= 1`` and ``a > 0`` (``inf`` once ``B`` underflows)."""
    start = max(0, math.floor(min(servers, a) - 10.0 * math.sqrt(a) - _WARM_START_STEPS))
    y = 1.0 if start == 0 else a / (a - start)
    for k in range(start + 1, servers + 1):
        y = 1.0 + (k / a) * y
        if y == math.inf:
            break
    return y


def _check_servers(servers: int) -> None:
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 0:
        raise ValueError(f"the number of servers must be a non-negative integer, got {servers!r}")


def _checked_load(offered_load: float) -> float:
    a = float(offered_load)
    if not 0.0 <= a <= MAX_OFFERED_LOAD:
        raise ValueError(
            f"the offered load must be in [0, {MAX_OFFERED_LOAD:g}] erlangs, got {offered_load!r}"
        )
    return a


class Balancing(enum.Enum):
    """How requests are spread over the pods (see :func:`waiting_time` for each model)."""

    JOIN_SHORTEST_QUEUE = "join-shortest-queue"
    """To the pod with the fewest requests in flight: the demo's balancer, a least-request proxy."""
    RANDOM = "random"
    """To a pod at random, as kube-proxy's iptables mode does per connection: n independent pods."""
    POOLED = "pooled"
    """One queue for all slots (a request takes the first free slot anywhere): the lower bound."""


@dataclasses.dataclass(frozen=True)
class Waiting:
    """The wait for a slot: 0 with probability ``1 - probability``, else exponential at ``rate``.

    ``rate`` is per second; 0.0 means the queue has no steady state (the load meets or exceeds
    the slots), so every request waits without bound.
    """

    probability: float
    """``P(W > 0)``, the probability that a request waits at all."""
    rate: float
    """The rate (1/s) of the exponential wait of a request that waits."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.probability <= 1.0 and self.rate >= 0.0):
            raise ValueError(f"not a wait: {self!r} (probability in [0, 1], rate >= 0)")

    @property
    def mean_seconds(self) -> float:
        """The mean wait of all requests, ``probability / rate`` (``inf`` without steady state)."""
        if self.probability == 0.0:
            return 0.0
        return self.probability / self.rate if self.rate > 0.0 else math.inf

    def survival(self, seconds: float) -> float:
        """``P(W > seconds)``: the probability that a request waits longer than ``seconds``."""
        if seconds < 0.0:
            return 1.0
        if self.probability == 0.0 or seconds == 0.0:
            return self.probability
        return self.probability * math.exp(-self.rate * seconds)


def waiting_time(
    arrival_rate: float,
    mean_service_seconds: float,
    slots_per_pod: int,
    pods: int = 1,
    *,
    balancing: Balancing = Balancing.JOIN_SHORTEST_QUEUE,
    service_scv: float = 1.0,
    arrival_scv: float = 1.0,
) -> Waiting:
    """Return the wait for a slot in ``pods`` pods of ``slots_per_pod`` slots behind ``balancing``.

    ``arrival_rate`` is in requests per second, ``service_scv`` and ``arrival_scv`` are the squared
    coefficients of variation of service times and inter-arrival times (1.0: exponential, Poisson).
    With ``c = slots_per_pod``, ``n = pods``, ``a = arrival_rate * mean_service_seconds``,
    ``rho = a / (n c)``, ``mu = 1 / mean_service_seconds`` and the Allen-Cunneen factor
    ``k = (arrival_scv + service_scv) / 2``, ``P(W > t) = P(wait) exp(-r t)`` with:

    - ``POOLED`` (M/G/nc): ``P(wait) = C(nc, a)``, ``r = (n c mu - lambda) / k``.
    - ``RANDOM`` (n independent M/G/c, ``lambda / n`` each): ``P(wait) = C(c, a / n)``,
      ``r = (c mu - lambda / n) / k``.
    - ``JOIN_SHORTEST_QUEUE``: ``P(wait) = C(nc, a)``, ``r = c mu (1 - rho**n) / k``. Why: an
      arrival waits only when every pod has all c slots busy (otherwise the pod with the fewest in
      flight has a free one), which is the pooled queue's event if the balancer keeps the pods'
      in-flight counts within one of each other, as then no slot idles while a request waits. A
      waiting arrival that finds Q requests queued in all joins the shortest pod queue, Q // n long
      when balanced, and waits for Q // n + 1 departures of its own pod, which come at rate c mu
      (its c slots stay busy meanwhile). In M/M/nc, Q given a wait is geometric with ratio rho, so
      Q // n is geometric with ratio rho**n, and a geometric number of exponential phases of rate
      c mu is exponential with rate ``c mu (1 - rho**n)``. One pod gives M/M/c exactly; rho -> 1
      gives the pooled queue (JSQ's heavy-traffic limit); for every t the tail lies between the
      pooled queue's (``C(nc, a)`` and a faster ``n c mu (1 - rho) >= c mu (1 - rho**n)``) and
      the independent pods' (``C(c, a/n) >= C(nc, a)`` and a slower ``c mu (1 - rho)``).
      Against a dispatch-level simulation (n up to 10, c up to 8, rho 0.5 to 0.9, exponential
      service) its mean wait is 7 % below to 40 % above the simulated one, mostly above, and
      where it puts P(W > t) at 1 % the simulation finds 0.6 to 1.4 %: real JSQ waits less
      often (in-flight counts drift apart, so some arrivals find a free slot while another pod
      queues) but longer (nobody moves to a pod whose slot frees first), and the two errors
      nearly cancel. See docs/required-replicas.md for the numbers.

    ``pods=1`` gives M/G/c for every balancing. When the load meets or exceeds the slots
    (``rho >= 1``) the result is ``Waiting(1.0, 0.0)``; with no arrivals, or with neither kind of
    variability (``k = 0``), ``Waiting(0.0, inf)``.
    Raises ``ValueError`` for a negative rate, a non-positive mean service time, fewer than one
    slot or pod, or a negative coefficient of variation.
    """
    lam = float(arrival_rate)
    if not (lam >= 0.0 and math.isfinite(lam)):
        raise ValueError(f"the arrival rate must be a finite number >= 0, got {arrival_rate!r}")
    if not (mean_service_seconds > 0.0 and math.isfinite(mean_service_seconds)):
        raise ValueError(f"the mean service time must be > 0 s, got {mean_service_seconds!r}")
    for name, count in (("slots_per_pod", slots_per_pod), ("pods", pods)):
        _check_servers(count)
        if count < 1:
            raise ValueError(f"{name} must be at least 1, got {count}")
    if not (service_scv >= 0.0 and arrival_scv >= 0.0):
        raise ValueError("squared coefficients of variation must be >= 0")
    mu = 1.0 / mean_service_seconds
    a = lam * mean_service_seconds
    c, n = slots_per_pod, pods
    if lam == 0.0:
        return Waiting(0.0, math.inf)
    if a >= n * c:
        return Waiting(1.0, 0.0)
    variability = (arrival_scv + service_scv) / 2.0
    if variability == 0.0:  # regular arrivals, constant service, below capacity: nobody waits
        return Waiting(0.0, math.inf)
    if balancing is Balancing.RANDOM:
        probability, rate = erlang_c(c, a / n), c * mu - lam / n
    elif balancing is Balancing.POOLED:
        probability, rate = erlang_c(n * c, a), n * c * mu - lam
    else:
        rho = a / (n * c)
        probability, rate = erlang_c(n * c, a), c * mu * -math.expm1(n * math.log(rho))
    return Waiting(probability, rate / variability)


@dataclasses.dataclass(frozen=True, eq=False)
class ServiceTime:
    """A measured distribution of service times: ``values`` in seconds with ``weights``.

    ``values`` are ascending, distinct, finite and >= 0; ``weights`` positive and summing to 1
    (``ValueError`` otherwise). Both are read-only float64 arrays. Build one with
    :meth:`from_sketch` (a pushed ``service_time`` sketch) or :meth:`from_samples`.

    >>> service = ServiceTime.from_samples([0.1, 0.1, 0.2, 0.4])
    >>> service.mean_seconds, service.survival(0.15)
    (0.2, 0.5)
    """

    values: NDArray[np.float64]
    weights: NDArray[np.float64]

    def __post_init__(self) -> None:
        values = np.array(self.values, dtype=np.float64, ndmin=1)
        weights = np.array(self.weights, dtype=np.float64, ndmin=1)
        if values.ndim != 1 or values.shape != weights.shape or values.size == 0:
            raise ValueError("values and weights must be 1-D arrays of the same, non-zero length")
        if not (np.all(np.isfinite(values)) and values[0] >= 0.0 and np.all(np.diff(values) > 0)):
            raise ValueError("service times must be finite, >= 0 s and strictly ascending")
        if not (np.all(weights > 0.0) and math.isclose(weights.sum(), 1.0, rel_tol=1e-9)):
            raise ValueError("weights must be positive and sum to 1")
        values.flags.writeable = False
        weights.flags.writeable = False
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "weights", weights)

    @classmethod
    def from_sketch(cls, service: sketch.LatencySketch) -> ServiceTime | None:
        """The distribution of a sketch: each bin's representative value, weighted by its count.

        Values are within the sketch's relative accuracy (1 %) of the measured ones; the
        ``zero_count`` values count as 0.0 s. ``None`` for an empty sketch (no data is a value:
        :func:`required_replicas` says whether it needed any).
        """
        if service.is_empty():
            return None
        values = sketch.bin_value(service.indices)
        counts = service.counts.astype(np.float64)
        if service.zero_count:
            values = np.concatenate(([0.0], values))
            counts = np.concatenate(([float(service.zero_count)], counts))
        return cls(values, counts / counts.sum())

    @classmethod
    def from_samples(cls, seconds: ArrayLike) -> ServiceTime:
        """The empirical distribution of service times in seconds (any shape; flattened).

        Raises ``ValueError`` for no samples or a negative, NaN or infinite one.
        """
        v = np.asarray(seconds, dtype=np.float64).ravel()
        if v.size == 0 or not np.all((v >= 0.0) & np.isfinite(v)):
            raise ValueError("service times must be finite, >= 0 s, and at least one")
        values, counts = np.unique(v, return_counts=True)
        return cls(values, counts / v.size)

    @property
    def mean_seconds(self) -> float:
        """The mean service time ``E S`` in seconds."""
        return float(np.sum(self.values * self.weights))

    @property
    def scv(self) -> float:
        """The squared coefficient of variation ``Var S / (E S)^2`` (0.0 when ``E S`` is 0)."""
        mean = self.mean_seconds
        if mean == 0.0:
            return 0.0
        variance = float(np.sum((self.values - mean) ** 2 * self.weights))
        return variance / mean**2

    def survival(self, seconds: float) -> float:
        """``P(S > seconds)``: the share of service times longer than ``seconds``."""
        below = np.searchsorted(self.values, seconds, side="right")
        return float(self.weights[below:].sum())

    def quantile(self, q: float) -> float:
        """The shortest service time ``t`` with ``P(S <= t) >= q`` (the inverse CDF), in seconds."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"the quantile must be in [0, 1], got {q!r}")
        below = np.searchsorted(np.cumsum(self.weights), q, side="left")
        return float(self.values[min(int(below), self.values.size - 1)])

    def waiting_misses(self, waiting: Waiting, seconds: float) -> float:
        """``P(T > seconds) - P(S > seconds)``: the requests that miss ``seconds`` by waiting.

        That is ``P(W + S > t, S <= t) = sum over s_i <= t of w_i P(W > t - s_i)``.
        """
        below = np.searchsorted(self.values, seconds, side="right")
        if below == 0 or waiting.probability == 0.0:
            return 0.0
        slack = seconds - self.values[:below]
        return waiting.probability * float(
            np.sum(self.weights[:below] * np.exp(-waiting.rate * slack))
        )


def time_in_system_survival(waiting: Waiting, service: ServiceTime, seconds: float) -> float:
    """``P(T > seconds)`` for ``T = W + S``, the wait and an independent service time (FIFO).

    Exact for this wait and this service distribution: the sum of ``P(S > t)`` and
    :meth:`ServiceTime.waiting_misses`.
    """
    return service.survival(seconds) + service.waiting_misses(waiting, seconds)


def exponential_time_in_system_survival(
    waiting: Waiting, mean_service_seconds: float, seconds: float
) -> float:
    """``P(T > seconds)`` for ``T = W + S`` with exponential service of the given mean.

    The closed form of the convolution: with ``mu = 1 / mean``, ``r = waiting.rate`` and
    ``p = waiting.probability``, ``P(T > t) = exp(-mu t) + p mu exp(-r t) f`` where
    ``f = (1 - exp(-(mu - r) t)) / (mu - r)``, which is ``t`` when ``r = mu``. For M/M/c
    (``waiting_time(..., pods=1)``) this is the textbook sojourn-time distribution.
    """
    t = float(seconds)
    if t < 0.0:
        return 1.0
    mu = 1.0 / mean_service_seconds
    served_late = math.exp(-mu * t)
    if waiting.probability == 0.0:
        return served_late
    gap = mu - waiting.rate
    f = t if gap == 0.0 else -math.expm1(-gap * t) / gap
    return min(1.0, served_late + waiting.probability * mu * math.exp(-waiting.rate * t) * f)


class Basis(enum.Enum):
    """What a :class:`ReplicaEstimate` rests on."""

    MODEL = "model"
    """The smallest replica count whose predicted misses fit the budget."""
    SERVICE_BOUND = "service-bound"
    """The service time alone misses the SLO (almost) as often as allowed, or more: replicas
    stop where more would not help (see :func:`required_replicas`)."""
    QUEUE_GROWING = "queue-growing"
    """The model asked for fewer than the ready pods while the queue grows: held at ready."""
    NO_ARRIVALS = "no-arrivals"
    """Nothing arrived in the rate window: no pod is needed for the load."""
    HELD = "held"
    """Fewer pods than the ready ones carry the load, but not the same load a few standard
    errors higher: the count that does (``adapter.required_replicas``'s hysteresis)."""


@dataclasses.dataclass(frozen=True)
class ReplicaEstimate:
    """The answer of :func:`required_replicas`, with what it rests on."""

    replicas: int
    """The replica count to serve as ``inference_required_replicas``."""
    basis: Basis
    model_replicas: int
    """What the model alone asks for, before the queue-growth guard."""
    miss_probability: float
    """The predicted ``P(T > SLO)`` at :attr:`model_replicas` (0.0 for no arrivals)."""
    service_miss_probability: float
    """``P(S > SLO)``: the misses no replica count removes (0.0 for no arrivals)."""
    meets_slo: bool
    """Whether :attr:`miss_probability` is within ``1 - q``."""


def required_replicas(
    *,
    arrival_rate: float,
    service: ServiceTime | None,
    slots_per_pod: int | None,
    ready_pods: int,
    slo_seconds: float,
    quantile: float = 0.99,
    queue_growing: bool = False,
    balancing: Balancing = Balancing.JOIN_SHORTEST_QUEUE,
    arrival_scv: float = 1.0,
) -> ReplicaEstimate:
    """Return the smallest pod count ``n`` with ``P(T > slo_seconds) <= 1 - quantile``.

    ``P(T > SLO)`` is :func:`time_in_system_survival` of :func:`waiting_time` for ``n`` pods of
    ``slots_per_pod`` slots behind ``balancing``, the ``service`` distribution's mean and
    ``Cs^2``, ``arrival_rate`` and ``arrival_scv``. The arrival rate is the offered one, in
    requests per second over the rate window: completions per second plus the growth of the
    requests in the system (and any requests shed), since completions alone read an overloaded
    Deployment as merely full. ``slots_per_pod`` is an int (pods that differ: pass the smallest,
    so the answer errs high). The
    search starts at the fewest pods that hold the load (``n c > a``) and is a doubling then a
    bisection: ``P(T > SLO)`` falls as ``n`` grows, for every balancing.

    The guards, in order:

    - ``slots_per_pod`` missing or 0: :class:`MissingInput` (``inference_worker_slots``), even
      without load, so an old pusher is told at once, not at the first burst.
    - No arrivals: 0 replicas (:attr:`Basis.NO_ARRIVALS`); the HPA's ``minReplicas`` is the floor.
    - ``service`` missing (no service times in the window): :class:`MissingInput`
      (``service_time``).
    - The service time alone misses the SLO: no ``n`` helps against ``P(S > SLO)``, so waiting
      may cause only the rest of the budget, ``1 - q - P(S > SLO)``; as that rest shrinks to
      nothing the count grows without bound. So once it falls below :data:`MIN_WAITING_SHARE`
      of ``1 - q`` (:attr:`Basis.SERVICE_BOUND`; ``meets_slo`` turns false when ``P(S > SLO)``
      passes ``1 - q`` or a little before), the count is sized for the tightest SLO the service
      time leaves room for, its ``1 - 0.9 (1 - q)`` quantile, with waiting allowed a tenth of the
      budget there: the load is carried with almost no queue, without asking for
      ``maxReplicas``. The count is the same for any SLO below that point, so it stays finite,
      continuous and monotonic as the SLO tightens.
    - ``queue_growing``: never below ``ready_pods`` (:attr:`Basis.QUEUE_GROWING`); the caller
      decides what growth is significant (more than the noise of its queue-depth estimate).

    Raises ``ValueError`` for an SLO that is not a positive number of seconds, a quantile outside
    (0, 1), a negative or non-finite rate, a negative ``ready_pods`` or an offered load above
    :data:`MAX_OFFERED_LOAD`.
    """
    if not (slo_seconds > 0.0 and math.isfinite(slo_seconds)):
        raise ValueError(f"the SLO must be a positive number of seconds, got {slo_seconds!r}")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"the quantile must be in (0, 1), got {quantile!r}")
    if not (arrival_rate >= 0.0 and math.isfinite(arrival_rate)):
        raise ValueError(f"the arrival rate must be a finite number >= 0, got {arrival_rate!r}")
    _check_servers(ready_pods)
    if not slots_per_pod:
        raise MissingInput(
            "inference_worker_slots",
            "no worker slots were pushed (gauge inference_worker_slots)",
        )
    _check_servers(slots_per_pod)
    if arrival_rate == 0.0:
        estimate = ReplicaEstimate(0, Basis.NO_ARRIVALS, 0, 0.0, 0.0, True)
        return _held_while_growing(estimate, ready_pods, queue_growing)
    if service is None:
        raise MissingInput(
            "service_time", "no service times were pushed within the window (field service_time)"
        )
    mean, scv = service.mean_seconds, service.scv
    offered = _checked_load(arrival_rate * mean)
    budget = 1.0 - quantile
    service_misses = service.survival(slo_seconds)
    sized_for, basis = slo_seconds, Basis.MODEL
    if service_misses > (1.0 - MIN_WAITING_SHARE) * budget:
        sized_for = service.quantile(1.0 - (1.0 - MIN_WAITING_SHARE) * budget)
        basis = Basis.SERVICE_BOUND

    def waiting_misses(pods: int, seconds: float) -> float:
        if mean == 0.0:  # every request took under a nanosecond: nothing waits
            return 0.0
        waiting = waiting_time(
            arrival_rate,
            mean,
            slots_per_pod,
            pods,
            balancing=balancing,
            service_scv=scv,
            arrival_scv=arrival_scv,
        )
        return service.waiting_misses(waiting, seconds)

    fewest = math.floor(offered / slots_per_pod) + 1  # n c > a: the pods hold the load
    pods = _smallest_meeting(
        lambda n: waiting_misses(n, sized_for), budget - service.survival(sized_for), fewest
    )
    misses = service_misses + waiting_misses(pods, slo_seconds)
    estimate = ReplicaEstimate(pods, basis, pods, misses, service_misses, misses <= budget)
    return _held_while_growing(estimate, ready_pods, queue_growing)


def _smallest_meeting(misses: Callable[[int], float], budget: float, fewest: int) -> int:
    """The smallest ``n >= fewest`` with ``misses(n) <= budget``, for ``misses`` falling in n."""
    if misses(fewest) <= budget:
        return fewest
    low, high = fewest, 2 * fewest  # misses(low) > budget throughout
    while misses(high) > budget:
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        if misses(middle) <= budget:
            high = middle
        else:
            low = middle
    return high


def _held_while_growing(
    estimate: ReplicaEstimate, ready_pods: int, queue_growing: bool
) -> ReplicaEstimate:
    """The estimate, raised to ``ready_pods`` while the queue grows."""
    if queue_growing and estimate.replicas < ready_pods:
        return dataclasses.replace(estimate, replicas=ready_pods, basis=Basis.QUEUE_GROWING)
    return estimate
