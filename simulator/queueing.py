"""Queueing theory the simulator is checked against: M/M/c, M/D/c, and pods behind a balancer
that joins the shortest queue.

Each model answers the three figures the fidelity tests compare (requests arrive as a Poisson
process at ``arrival_rate`` per second, ``slots`` worker slots per pod, FIFO, no shedding):

- ``mean_queue``: the time-averaged number of requests waiting for a slot (all pods together);
- ``wait_probability``: the share of requests that wait (by PASTA, the share of time an arrival
  would find every slot of its pod busy);
- ``time_in_system_quantile(q)``: the ``q``-quantile of arrival to response.

**M/M/c** (exponential service, mean ``1/mu``): Erlang C, ``C = P(wait)``; the wait of those
who wait is exponential with rate ``c mu - lambda``: ``adapter.queueing`` (the model behind
``inference_required_replicas``) for one pod, where it is exact.

**M/D/c** (every service takes ``D``): Crommelin's embedded chain. Requests present at ``t + D``
are those waiting at ``t`` (every one in a slot at ``t`` is gone by ``t + D``) plus the arrivals
in between: ``N(t + D) = max(N(t) - c, 0) + Poisson(lambda D)`` for *every* ``t``, so the
chain's stationary law is that of the number present at any time. With FIFO and equal service
times a request starts when the one ``c`` places ahead leaves, which unrolls to: a request waits
at most ``kD + u`` (``0 <= u < D``) iff those still waiting ``D - u`` before it arrives, plus
those arriving in between, are fewer than ``(k + 1) c``:
``P(W <= kD + u) = P(max(N - c, 0) + Poisson(lambda (D - u)) <= (k + 1) c - 1)``.

**Join the shortest queue** (``pods`` pods of ``slots`` slots, exponential service): the
dispatch-level model of ``localcluster.balancer`` (fewest requests in flight, ties among equal
pods break any way: the sorted counts evolve the same). A continuous-time Markov chain on the
sorted in-flight counts, truncated at ``max_per_pod``, solved for its stationary law. An arrival
seeing counts ``(m, ...)`` joins a pod holding ``m``; it waits iff ``m >= slots``, and then for
``m - slots + 1`` departures of that pod (later arrivals queue behind it), each after an
``Exp(slots mu)``: so its time in system is ``Erlang(m - slots + 1, slots mu) + Exp(mu)``. One pod
is M/M/c exactly; ``pods`` pods lie between one M/M/(pods x slots) (a shared queue) and
``pods`` independent M/M/c (random dispatch). The chain has ``C(max_per_pod + pods, pods)``
states and is solved densely, which suits a few pods (two pods of 40 each: 861 states).

Pure: numpy, the standard library and ``adapter.queueing``.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapter import queueing as adapter_queueing

FloatArray = npt.NDArray[np.float64]


def _quantile(tail: Callable[[float], float], q: float, scale: float) -> float:
    """The ``t`` where ``tail(t) = 1 - q``, by bisection (``tail`` falls from 1 to 0)."""
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), not {q}")
    low, high = 0.0, scale
    while tail(high) > 1 - q:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        if tail(middle) > 1 - q:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _poisson_cdf(k: int, mean: float) -> float:
    """P(Poisson(mean) <= k)."""
    if k < 0:
        return 0.0
    term = total = math.exp(-mean)
    for i in range(1, k + 1):
        term *= mean / i
        total += term
    return min(1.0, total)


def erlang_tail(stages: int, rate: float, t: float) -> float:
    """P(Erlang(stages, rate) > t): fewer than ``stages`` events of a Poisson process by t."""
    return _poisson_cdf(stages - 1, rate * t)


def erlang_plus_exponential_tail(stages: int, rate: float, mu: float, t: float) -> float:
    """P(Erlang(stages, rate) + Exp(mu) > t), for ``stages >= 0`` and ``rate >= mu``.

    ``P(E > t) + e^(-mu t) (rate / (rate - mu))^stages P(Gamma(stages, rate - mu) <= t)``, and
    for ``rate == mu`` the sum is ``Erlang(stages + 1, mu)``.
    """
    if stages == 0:
        return math.exp(-mu * t)
    if math.isclose(rate, mu):
        return erlang_tail(stages + 1, mu, t)
    if rate < mu:
        raise ValueError("the Erlang stages must be at least as fast as the exponential")
    gap = rate - mu
    return erlang_tail(stages, rate, t) + math.exp(-mu * t) * (rate / gap) ** stages * (
        1.0 - erlang_tail(stages, gap, t)
    )


@dataclass(frozen=True)
class MMc:
    """One M/M/c queue: ``slots`` servers, service rate ``mu`` each (the adapter's own model,
    ``adapter.queueing``, for one pod: Erlang C and the exponential wait)."""

    arrival_rate: float
    mu: float
    slots: int

    def __post_init__(self) -> None:
        if not 0 < self.arrival_rate < self.slots * self.mu:
            raise ValueError("an M/M/c queue needs 0 < arrival rate < slots x mu")

    @functools.cached_property
    def _waiting(self) -> adapter_queueing.Waiting:
        return adapter_queueing.waiting_time(self.arrival_rate, 1 / self.mu, self.slots)

    @property
    def wait_probability(self) -> float:
        return self._waiting.probability

    @property
    def mean_queue(self) -> float:
        """By Little's law, the arrival rate times the mean wait."""
        return self.arrival_rate * self._waiting.mean_seconds

    def time_in_system_tail(self, t: float) -> float:
        """P(T > t)."""
        return adapter_queueing.exponential_time_in_system_survival(self._waiting, 1 / self.mu, t)

    def time_in_system_quantile(self, q: float) -> float:
        return _quantile(self.time_in_system_tail, q, 1 / self.mu)


@dataclass(frozen=True)
class MDc:
    """One M/D/c queue: ``slots`` servers, every service ``service_seconds`` long."""

    arrival_rate: float
    service_seconds: float
    slots: int
    max_present: int = 400
    """Truncation of the chain (the law's tail beyond it must be negligible)."""

    def __post_init__(self) -> None:
        if not 0 < self.arrival_rate * self.service_seconds < self.slots:
            raise ValueError("an M/D/c queue needs 0 < arrival rate x D < slots")

    @functools.cached_property
    def present(self) -> FloatArray:
        """The stationary law of the number present, ``present[n] = P(N = n)``."""
        size = self.max_present + 1
        mean = self.arrival_rate * self.service_seconds
        arrivals = np.array([_poisson_pmf(k, mean) for k in range(size)])
        transition = np.zeros((size, size))
        for n in range(size):
            base = max(n - self.slots, 0)
            transition[n, base:] = arrivals[: size - base]
            transition[n, -1] += 1.0 - transition[n].sum()  # truncation: the rest stays at the top
        return _stationary(transition)

    @property
    def wait_probability(self) -> float:
        return float(self.present[self.slots :].sum())

    @property
    def mean_queue(self) -> float:
        present = self.present
        waiting = np.maximum(np.arange(present.size) - self.slots, 0)
        return float(present @ waiting)

    def wait_cdf(self, t: float) -> float:
        """P(W <= t), Crommelin's formula (module docstring)."""
        if t < 0:
            return 0.0
        d = self.service_seconds
        periods = math.floor(t / d)
        rest = t - periods * d
        present = self.present
        limit = (periods + 1) * self.slots - 1
        # P(Poisson(mean) <= j) for j = 0..limit, then one term per count present
        pmf = np.array([_poisson_pmf(j, self.arrival_rate * (d - rest)) for j in range(limit + 1)])
        cdf = np.concatenate(([0.0], np.minimum(np.cumsum(pmf), 1.0)))
        waiting = np.maximum(np.arange(present.size) - self.slots, 0)
        return float(present @ cdf[np.maximum(limit - waiting + 1, 0)])

    def time_in_system_quantile(self, q: float) -> float:
        d = self.service_seconds
        return d + _quantile(lambda t: 1.0 - self.wait_cdf(t), q, d)


def _poisson_pmf(k: int, mean: float) -> float:
    return math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) if mean > 0 else float(k == 0)


def _stationary(transition: FloatArray) -> FloatArray:
    """The stationary law of a Markov chain (rows of ``transition`` sum to 1)."""
    size = transition.shape[0]
    system = transition.T - np.eye(size)
    system[-1] = 1.0  # replace one balance equation by the normalization
    right = np.zeros(size)
    right[-1] = 1.0
    law = np.linalg.solve(system, right)
    return np.maximum(law, 0.0) / np.maximum(law, 0.0).sum()


@dataclass(frozen=True)
class JoinShortestQueue:
    """``pods`` pods of ``slots`` slots behind a least-in-flight balancer (exponential service)."""

    arrival_rate: float
    mu: float
    slots: int
    pods: int
    max_per_pod: int = 40

    MAX_STATES = 5000
    """The chain is solved densely: ``states**2`` floats of memory, ``states**3`` operations."""

    def __post_init__(self) -> None:
        if not 0 < self.arrival_rate < self.pods * self.slots * self.mu:
            raise ValueError("the pods need 0 < arrival rate < pods x slots x mu")
        states = math.comb(self.max_per_pod + self.pods, self.pods)
        if states > self.MAX_STATES:
            raise ValueError(
                f"{states} states (pods {self.pods}, max_per_pod {self.max_per_pod}): more than"
                f" the dense solve's {self.MAX_STATES}; fewer pods or a lower max_per_pod"
            )

    def _states(self) -> list[tuple[int, ...]]:
        return list(itertools.combinations_with_replacement(range(self.max_per_pod + 1), self.pods))

    @functools.cached_property
    def _law(self) -> tuple[list[tuple[int, ...]], FloatArray]:
        """The states (sorted counts) and their stationary probabilities (solved once)."""
        states = self._states()
        index = {state: i for i, state in enumerate(states)}
        generator = np.zeros((len(states), len(states)))
        for i, state in enumerate(states):
            if state[0] < self.max_per_pod:  # an arrival joins a pod holding the fewest
                joined = tuple(sorted((state[0] + 1, *state[1:])))
                generator[i, index[joined]] += self.arrival_rate
            for pod, count in enumerate(state):
                if count and (pod == 0 or state[pod - 1] != count):  # one of equal pods
                    same = state.count(count)
                    left = tuple(sorted((*state[:pod], count - 1, *state[pod + 1 :])))
                    generator[i, index[left]] += same * min(count, self.slots) * self.mu
            generator[i, i] = -generator[i].sum()
        system = generator.T.copy()
        system[-1] = 1.0
        right = np.zeros(len(states))
        right[-1] = 1.0
        law = np.maximum(np.linalg.solve(system, right), 0.0)
        return states, law / law.sum()

    @functools.cached_property
    def _joined_counts(self) -> FloatArray:
        """P(an arrival joins a pod already holding m), for m = 0..max_per_pod (PASTA)."""
        states, law = self._law
        joined = np.zeros(self.max_per_pod + 1)
        for state, probability in zip(states, law, strict=True):
            joined[state[0]] += probability
        return joined

    @property
    def wait_probability(self) -> float:
        return float(self._joined_counts[self.slots :].sum())

    @property
    def mean_queue(self) -> float:
        states, law = self._law
        waiting = np.array([sum(max(k - self.slots, 0) for k in s) for s in states])
        return float(law @ waiting)

    def time_in_system_tail(self, t: float) -> float:
        """P(T > t): a mixture over the count the arrival joins (module docstring)."""
        rate = self.slots * self.mu
        return float(
            sum(
                p * erlang_plus_exponential_tail(max(m - self.slots + 1, 0), rate, self.mu, t)
                for m, p in enumerate(self._joined_counts)
                if p > 0
            )
        )

    def time_in_system_quantile(self, q: float) -> float:
        return _quantile(self.time_in_system_tail, q, 1 / self.mu)
