"""Service-time distributions for the ``simulated`` mode, standing in for GPU work.

``parse_distribution("lognormal:20ms,0.5")`` gives a ``ServiceTime``; ``ServiceTimeSampler`` draws
from it with a seeded numpy generator, optionally growing with the batch size (a batch of n costs
``1 + growth*(n - 1)`` times a single request, as batched GPU kernels do). Pure: no clock, no I/O.

Specs (durations as in ``adapter.durations``):

- ``constant:20ms`` — always 20 ms
- ``exponential:20ms`` — exponential with mean 20 ms (M/M/c service)
- ``lognormal:20ms,0.5`` — lognormal with median 20 ms and sigma 0.5
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from adapter import durations

KINDS = ("constant", "exponential", "lognormal")


@dataclass(frozen=True)
class ServiceTime:
    """A distribution of service times in seconds."""

    kind: str
    scale_seconds: float
    """The constant, the mean (exponential) or the median (lognormal)."""
    sigma: float = 0.0
    """Lognormal shape."""

    @property
    def mean_seconds(self) -> float:
        """The distribution's mean, e.g. for queueing predictions."""
        if self.kind == "lognormal":
            return self.scale_seconds * math.exp(self.sigma**2 / 2)
        return self.scale_seconds

    def __str__(self) -> str:
        scale = durations.format_duration(self.scale_seconds)
        return f"{self.kind}:{scale}" + (f",{self.sigma:g}" if self.kind == "lognormal" else "")

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """Draws in seconds: a float for ``size=None``, else a float64 array of ``size``.

        One draw takes the same random numbers either way, so a seeded server and a seeded
        simulation that draw the same count see the same times.
        """
        if self.kind == "constant":
            return self.scale_seconds if size is None else np.full(size, self.scale_seconds)
        if self.kind == "exponential":
            return rng.exponential(self.scale_seconds, size)
        return self.scale_seconds * np.exp(rng.normal(0.0, self.sigma, size))


def parse_distribution(spec: str) -> ServiceTime:
    """Parse a ``--service-time`` spec; ValueError with a one-line message when invalid.

    >>> parse_distribution("lognormal:20ms,0.5").mean_seconds > 0.02
    True
    """
    kind, _, rest = spec.partition(":")
    if kind not in KINDS or not rest:
        raise ValueError(
            f"invalid service time {spec!r}: use constant:20ms, exponential:20ms"
            " or lognormal:20ms,0.5"
        )
    parts = rest.split(",")
    expected = 2 if kind == "lognormal" else 1
    if len(parts) != expected:
        raise ValueError(f"invalid service time {spec!r}: {kind} takes {expected} value(s)")
    scale = durations.parse_duration(parts[0])
    sigma = 0.0
    if kind == "lognormal":
        try:
            sigma = float(parts[1])
        except ValueError:
            sigma = -1.0
        if not 0 <= sigma <= 5 or not math.isfinite(sigma):
            raise ValueError(f"invalid service time {spec!r}: sigma must be a number in [0, 5]")
    return ServiceTime(kind, scale, sigma)


def distribution_arg(text: str) -> ServiceTime:
    """``parse_distribution`` for argparse's ``type=``: the same message, as
    ``ArgumentTypeError`` (argparse prints it after the flag's name)."""
    try:
        return parse_distribution(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


class ServiceTimeSampler:
    """Seeded draws of service times."""

    def __init__(
        self, distribution: ServiceTime, rng: np.random.Generator, batch_growth: float = 0.0
    ) -> None:
        self.distribution = distribution
        self.batch_growth = batch_growth
        self._rng = rng

    def draw(self, batch_size: int = 1) -> float:
        """One service time, in seconds, for a batch of ``batch_size`` requests."""
        base = float(self.distribution.sample(self._rng))
        return base * (1.0 + self.batch_growth * (batch_size - 1))
