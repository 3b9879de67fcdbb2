"""Which pushes the adapter takes on now: a bound on pushes in flight, and a rate per pod.

Reads come first (DESIGN.md): when pushes arrive faster than one core can apply them, the
adapter refuses some with 429 and ``Retry-After`` rather than let HPA queries wait behind them.
``adapter.client`` keeps a refused report and merges it into its next one, so a refusal only
delays data. Two bounds, each a flag:

- ``InFlight`` (``--max-inflight-pushes``): pushes admitted and not yet answered. The push
  handler admits a push, then yields once to the event loop before doing its work, so every
  request that arrived in the same turn (queries first among them) is started before the
  pushes admitted in it are applied: the pushes waiting to be applied are the ones in flight.
  A query therefore waits behind at most this many pushes' work.
- ``PodRates`` (``--max-pod-push-rate``): a token bucket per pod, so a pod that pushes in a
  loop (a bug, or a client that ignores ``Retry-After``) costs the adapter at most its rate.

Pure: time comes in as an argument; nothing here awaits or logs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable


class InFlight:
    """A counter of pushes in flight with a ceiling."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def enter(self) -> bool:
        """Take a place if one is free; False when ``limit`` pushes are in flight."""
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        """Give back the place ``enter`` took."""
        self.count -= 1


class PodRates:
    """At most ``rate`` pushes a second from each pod: a token bucket of ``rate`` tokens per pod
    (so a burst of up to ``rate`` passes), refilled at ``rate`` a second.

    Bounded: at most ``capacity`` pods are remembered, the one remembered longest forgotten
    first (a forgotten pod starts again with a full bucket); ``retain`` drops the pods the
    store forgot.
    """

    def __init__(self, rate_per_second: float, capacity: int) -> None:
        if rate_per_second <= 0:
            raise ValueError("the push rate must be positive")
        self.rate = rate_per_second
        self._burst = max(1.0, rate_per_second)
        self._capacity = capacity
        self._buckets: dict[Hashable, list[float]] = {}
        """pod -> [tokens, when they were counted], changed in place (no object per push for
        the cyclic collector)."""

    def __len__(self) -> int:
        return len(self._buckets)

    def admit(self, pod: Hashable, now: float) -> float | None:
        """Take a token for one push of ``pod`` at ``now`` (seconds, any monotonic clock):
        None when it may go ahead, else the seconds until it may."""
        bucket = self._buckets.get(pod)
        if bucket is None:
            if len(self._buckets) >= self._capacity:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[pod] = [self._burst, now]
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0 - 1e-9:  # within rounding of a whole token is a token
            bucket[0] = tokens
            return (1.0 - tokens) / self.rate
        bucket[0] = max(0.0, tokens - 1.0)
        return None

    def retain(self, keep: Callable[[Hashable], bool]) -> int:
        """Forget the pods for which ``keep`` is false; returns how many."""
        before = len(self._buckets)
        self._buckets = {pod: b for pod, b in self._buckets.items() if keep(pod)}
        return before - len(self._buckets)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds (RFC 9110 delta-seconds), rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
