"""Request-rate profiles for the load generator, and Poisson arrival times drawn from them.

Role: the pure core of ``model-server loadgen``. It turns a ``--profile`` spec into a
``RateProfile`` (requests per second as a function of seconds since the start) and draws the
arrival times of a non-homogeneous Poisson process with that rate. The shell
(``model_server.loadgen``) then launches one request at each arrival time, whatever happens to
the earlier ones: that is what makes the load open-loop, so an overloaded server shows up as
queueing and shedding, as it does under real traffic.

Profile specs (``RATE`` is ``--rate``, ``DURATION`` is ``--duration``; durations are written
``500ms``, ``30s``, ``1m`` as everywhere else):

  ``constant``               RATE for the whole run.
  ``step:AT,RATE2``          RATE until AT, then RATE2 (``step:30s,200``).
  ``ramp:TO_RATE``           linear from RATE at 0 to TO_RATE at DURATION (``ramp:500``).
  ``sine:AMPLITUDE,PERIOD``  RATE + AMPLITUDE * sin(2 pi t / PERIOD), never below 0
                             (``sine:50,20s``).
  ``csv:PATH``               a file of ``time_seconds,rate`` rows, piecewise constant: each rate
                             holds from its time until the next row's time, the last one until
                             the end, and the rate before the first row is 0. A first row that
                             is not numeric is a header; blank lines and ``#`` comments are
                             skipped; a time may also be a duration (``30s``).

Rates are requests per second, finite and >= 0. A bad spec raises ``InvalidProfile`` (a
``ValueError``) with a one-line message that quotes the spec.

Arrivals come from thinning (Lewis and Shedler, 1979): candidates of a homogeneous Poisson
process at the profile's ``max_rate`` are kept with probability ``rate(t) / max_rate``. The
candidates are drawn as a Poisson count of sorted uniform times per block, which has the same
distribution as summing exponential gaps but vectorizes; blocks bound the memory a long or fast
run needs. Everything random comes from the ``numpy.random.Generator`` passed in, so a seed
reproduces a run's schedule exactly.

Pure: numpy and the standard library only. No clock, no asyncio, no logging; the one file read a
``csv:`` profile needs goes through the ``read_text`` callable the caller passes in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from adapter import durations

__all__ = [
    "PROFILE_HELP",
    "ConstantProfile",
    "InvalidProfile",
    "PiecewiseProfile",
    "RampProfile",
    "RateProfile",
    "SineProfile",
    "StepProfile",
    "arrival_times",
    "mean_rate",
    "parse_profile",
    "parse_rate_csv",
]

FloatArray = npt.NDArray[np.float64]

PROFILE_HELP: Final = """\
profiles (--profile; RATE is --rate, DURATION is --duration):
  constant               RATE for the whole run (the default)
  step:AT,RATE2          RATE until AT, then RATE2            e.g. step:30s,200
  ramp:TO_RATE           linear from RATE to TO_RATE over DURATION   e.g. ramp:500
  sine:AMPLITUDE,PERIOD  RATE + AMPLITUDE*sin(2*pi*t/PERIOD), never below 0   e.g. sine:50,20s
  csv:PATH               rows "time_seconds,rate", each rate held until the next row's time
                         (0 before the first row; header line optional; '#' comments)
rates are requests per second; durations are written 500ms, 5s, 1m."""
"""The grammar as ``--help`` prints it (kept here, next to the parser it describes)."""

_BLOCK_CANDIDATES: Final = 1 << 18
"""Expected thinning candidates per block: big enough that numpy's per-call overhead vanishes,
small enough (2 MiB of float64) that a long, fast run never builds a huge temporary array."""

_MEAN_RATE_POINTS: Final = 10_000
"""Midpoints used to average a profile numerically (for the report's target rate only)."""


class InvalidProfile(ValueError):
    """A ``--profile`` spec or rate file that cannot be used; the message is one line."""


@runtime_checkable
class RateProfile(Protocol):
    """Requests per second as a function of seconds since the start of the run.

    ``rate_at`` and ``rates_at`` never return negative values; ``max_rate`` bounds them from
    above over all times >= 0 (thinning needs the bound, and it should be tight, since the
    fraction of candidates thrown away is ``1 - mean / max_rate``).
    """

    @property
    def max_rate(self) -> float:
        """An upper bound of the rate over all t >= 0, in requests per second."""
        ...

    def rate_at(self, t_seconds: float) -> float:
        """The rate at ``t_seconds`` after the start, in requests per second."""
        ...

    def rates_at(self, t_seconds: FloatArray) -> FloatArray:
        """``rate_at`` for an array of times (what thinning calls, once per block)."""
        ...


@dataclass(frozen=True)
class ConstantProfile:
    """The same rate for the whole run: a homogeneous Poisson process."""

    rate: float
    """Requests per second, >= 0."""

    def __post_init__(self) -> None:
        _check_rate("rate", self.rate)

    @property
    def max_rate(self) -> float:
        return self.rate

    def rate_at(self, t_seconds: float) -> float:
        return self.rate

    def rates_at(self, t_seconds: FloatArray) -> FloatArray:
        return np.full(np.shape(t_seconds), self.rate, dtype=np.float64)


@dataclass(frozen=True)
class StepProfile:
    """``before`` until ``at_seconds``, then ``after``: the sudden surge an HPA must catch."""

    before: float
    """Requests per second before the step, >= 0."""
    at_seconds: float
    """When the step happens, seconds after the start."""
    after: float
    """Requests per second from the step on, >= 0."""

    def __post_init__(self) -> None:
        _check_rate("rate before the step", self.before)
        _check_rate("rate after the step", self.after)
        _check_time("step time", self.at_seconds)

    @property
    def max_rate(self) -> float:
        return max(self.before, self.after)

    def rate_at(self, t_seconds: float) -> float:
        return self.before if t_seconds < self.at_seconds else self.after

    def rates_at(self, t_seconds: FloatArray) -> FloatArray:
        return np.where(np.asarray(t_seconds) < self.at_seconds, self.before, self.after)


@dataclass(frozen=True)
class RampProfile:
    """Linear from ``start`` at 0 to ``end`` at ``over_seconds``, then ``end`` from there on."""

    start: float
    """Requests per second at t = 0, >= 0."""
    end: float
    """Requests per second at ``over_seconds`` and after, >= 0."""
    over_seconds: float
    """How long the ramp takes, > 0 (the run's duration)."""

    def __post_init__(self) -> None:
        _check_rate("ramp start rate", self.start)
        _check_rate("ramp end rate", self.end)
        _check_positive_time("ramp duration", self.over_seconds)

    @property
    def max_rate(self) -> float:
        return max(self.start, self.end)

    def rate_at(self, t_seconds: float) -> float:
        return float(self.rates_at(np.array([t_seconds], dtype=np.float64))[0])

    def rates_at(self, t_seconds: FloatArray) -> FloatArray:
        fraction = np.clip(np.asarray(t_seconds, dtype=np.float64) / self.over_seconds, 0.0, 1.0)
        return self.start + (self.end - self.start) * fraction


@dataclass(frozen=True)
class SineProfile:
    """``mean + amplitude * sin(2 pi t / period_seconds)``, cut off at 0: a diurnal cycle."""

    mean: float
    """The rate the sine swings around, requests per second, >= 0."""
    amplitude: float
    """Requests per second; the sign only shifts the phase by half a period."""
    period_seconds: float
    """Seconds per full cycle, > 0."""

    def __post_init__(self) -> None:
        _check_rate("rate", self.mean)
        if not math.isfinite(self.amplitude):
            raise InvalidProfile(f"sine amplitude must be a finite number, not {self.amplitude}")
        _check_positive_time("sine period", self.period_seconds)

    @property
    def max_rate(self) -> float:
        return self.mean + abs(self.amplitude)

    def rate_at(self, t_seconds: float) -> float:
        return float(self.rates_at(np.array([t_seconds], dtype=np.float64))[0])

    def rates_at(self, t_seconds: FloatArray) -> FloatArray:
        phase = 2.0 * np.pi * np.asarray(t_seconds, dtype=np.float64) / self.period_seconds
        return np.maximum(self.mean + self.amplitude * np.sin(phase), 0.0)


@dataclass(frozen=True)
class PiecewiseProfile:
    """Rates that hold from each of ``times_seconds`` until the next (what ``csv:`` reads).

    Before the first time the rate is 0; the last rate holds for ever. Times are strictly
    increasing and >= 0, rates >= 0, and there is at least one row.
    """

    times_seconds: tuple[float, ...]
    rates: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.times_seconds:
            raise InvalidProfile("a rate table needs at least one row")
        if len(self.times_seconds) != len(self.rates):
            raise InvalidProfile(
                f"a rate table needs one rate per time, got {len(self.times_seconds)} times "
                f"and {len(self.rates)} rates"
            )
        for time_seconds in self.times_seconds:
            _check_time("time", time_seconds)
        for rate in self.rates:
            _check_rate("rate", rate)
        for earlier, later in zip(self.times_seconds, self.times_seconds[1:], strict=False):
            if later <= earlier:
                raise InvalidProfile(
                    f"times must increase from row to row, but {later:g} follows {earlier:g}"
                )

    @property
    def max_rate(self) -> float:
        return max(self.rates)

    def rate_at(self, t_seconds: float) -> float:
        return float(self.rates_at(np.array([t_seconds], dtype=np.float64))[0])

    def rates_at(self, t_seconds: FloatArray) -> FloatArray:
        index = np.searchsorted(self.times_seconds, np.asarray(t_seconds), side="right") - 1
        table = np.asarray(self.rates, dtype=np.float64)
        return np.where(index >= 0, table[np.maximum(index, 0)], 0.0)


def parse_profile(
    spec: str, *, rate: float, duration_seconds: float, read_text: Callable[[str], str]
) -> RateProfile:
    """Build the profile ``spec`` names (grammar in the module docstring and ``PROFILE_HELP``).

    ``rate`` is ``--rate`` (the constant rate, the rate before a step, a ramp's start, a sine's
    mean); ``duration_seconds`` is ``--duration`` (a ramp's length). ``read_text(path)`` returns
    a ``csv:`` file's contents; an ``OSError`` from it becomes ``InvalidProfile``.

    Examples: ``parse_profile("step:30s,200", rate=100, duration_seconds=60, read_text=...)``
    is ``StepProfile(before=100, at_seconds=30, after=200)``; ``"ramp:500"`` with the same
    arguments is ``RampProfile(start=100, end=500, over_seconds=60)``.

    Raises ``InvalidProfile`` (a ``ValueError``, one line, quoting ``spec``) for an unknown
    kind, a wrong number of arguments, a bad number or duration, and an unreadable or malformed
    rate file.
    """
    kind, separator, argument = spec.strip().partition(":")
    kind = kind.strip().lower()
    try:
        if kind == "constant":
            _expect_arguments(argument, separator, 0, "constant")
            return ConstantProfile(rate)
        if kind == "step":
            at, rate_after = _expect_arguments(argument, separator, 2, "step:AT,RATE2")
            return StepProfile(rate, _duration(at, "step time AT"), _number(rate_after, "RATE2"))
        if kind == "ramp":
            (to_rate,) = _expect_arguments(argument, separator, 1, "ramp:TO_RATE")
            return RampProfile(rate, _number(to_rate, "TO_RATE"), duration_seconds)
        if kind == "sine":
            amplitude, period = _expect_arguments(argument, separator, 2, "sine:AMPLITUDE,PERIOD")
            return SineProfile(
                rate,
                _number(amplitude, "AMPLITUDE", allow_negative=True),
                _duration(period, "sine PERIOD"),
            )
        if kind == "csv":
            path = argument.strip()
            if not path:
                raise InvalidProfile("expected csv:PATH")
            try:
                text = read_text(path)
            except OSError as error:
                raise InvalidProfile(
                    f"cannot read {path!r}: {error.strerror or error.__class__.__name__}"
                ) from error
            return parse_rate_csv(text)
    except InvalidProfile as error:
        raise InvalidProfile(f"invalid profile {_quote(spec)}: {error}") from error
    raise InvalidProfile(
        f"invalid profile {_quote(spec)}: unknown kind {_quote(kind)} "
        "(use constant, step:AT,RATE2, ramp:TO_RATE, sine:AMPLITUDE,PERIOD or csv:PATH)"
    )


def parse_rate_csv(text: str) -> PiecewiseProfile:
    """Read ``time_seconds,rate`` rows into a ``PiecewiseProfile``.

    A first row whose time is not a number or duration is a header and is skipped; blank lines
    and lines starting with ``#`` are skipped anywhere. Times are seconds (``30``, ``1.5``) or
    durations (``30s``, ``1m``); rates are requests per second.

    Example: ``"time_seconds,rate\\n0,10\\n30,100\\n"`` is 10/s for 30 s, then 100/s.

    Raises ``InvalidProfile`` naming the line for a malformed row, and for an empty table,
    times that do not increase, and negative or non-finite values.
    """
    times: list[float] = []
    rates: list[float] = []
    first_row = True
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != 2:
            raise InvalidProfile(
                f"line {line_number}: expected 'time_seconds,rate', got {_quote(line)}"
            )
        if first_row and not cells[0][:1].isdigit() and cells[0][:1] not in "+-.":
            first_row = False  # a header such as "time_seconds,rate"
            continue
        first_row = False
        try:
            time_seconds = _table_time(cells[0])
        except InvalidProfile as error:
            raise InvalidProfile(f"line {line_number}: {error}") from None
        try:
            rate = _number(cells[1], "rate")
        except InvalidProfile as error:
            raise InvalidProfile(f"line {line_number}: {error}") from None
        times.append(time_seconds)
        rates.append(rate)
    if not times:
        raise InvalidProfile("the rate file has no 'time_seconds,rate' rows")
    return PiecewiseProfile(tuple(times), tuple(rates))


def arrival_times(
    profile: RateProfile,
    duration_seconds: float,
    rng: np.random.Generator,
    max_count: int | None = None,
    *,
    block_candidates: int = _BLOCK_CANDIDATES,
) -> FloatArray:
    """Arrival times of a Poisson process with rate ``profile`` on ``[0, duration_seconds)``.

    Returns a sorted float64 array of seconds after the start, at most ``max_count`` long (the
    earliest ones; ``None`` means no count bound). Draws come from ``rng`` only, so the same
    seed gives the same array; ``block_candidates`` (expected candidates per block) changes
    which draws go where but not the distribution.

    Method: thinning. Per block of time ``[a, b)``, draw ``N ~ Poisson(max_rate * (b - a))``
    candidate times uniformly in the block and sort them (a homogeneous process at
    ``max_rate``), then keep each with probability ``rate(t) / max_rate``. Blocks stop early
    once ``max_count`` arrivals are kept.

    Raises ``ValueError`` for a negative or non-finite duration, a negative ``max_count`` or a
    non-positive ``block_candidates``.
    """
    if not math.isfinite(duration_seconds) or duration_seconds < 0:
        raise ValueError(f"duration must be a finite number >= 0, not {duration_seconds}")
    if max_count is not None and max_count < 0:
        raise ValueError(f"max_count must be >= 0, not {max_count}")
    if block_candidates <= 0:
        raise ValueError(f"block_candidates must be > 0, not {block_candidates}")
    ceiling = float(profile.max_rate)
    if duration_seconds == 0 or ceiling <= 0 or max_count == 0:
        return np.empty(0, dtype=np.float64)

    block_seconds = block_candidates / ceiling
    blocks = max(1, math.ceil(duration_seconds / block_seconds))
    kept_blocks: list[FloatArray] = []
    kept = 0
    for block in range(blocks):
        start = duration_seconds * block / blocks
        end = duration_seconds * (block + 1) / blocks
        count = int(rng.poisson(ceiling * (end - start)))
        candidates = np.sort(rng.uniform(start, end, count))
        accept = rng.uniform(0.0, ceiling, count) < profile.rates_at(candidates)
        # uniform() is [start, end) in exact arithmetic; rounding may still produce ``end``.
        accepted = candidates[accept & (candidates < end)]
        kept_blocks.append(accepted)
        kept += accepted.size
        if max_count is not None and kept >= max_count:
            break
    times = np.concatenate(kept_blocks)
    return times if max_count is None else times[:max_count]


def mean_rate(profile: RateProfile, start_seconds: float, end_seconds: float) -> float:
    """The profile's average rate over ``[start_seconds, end_seconds]``, in requests per second.

    A midpoint sum over 10,000 points: exact for constant and ramp profiles and close enough
    for the others to print a run's target rate next to its achieved rate. An empty interval
    gives the rate at ``start_seconds``.
    """
    if end_seconds <= start_seconds:
        return profile.rate_at(start_seconds)
    width = (end_seconds - start_seconds) / _MEAN_RATE_POINTS
    midpoints = start_seconds + width * (np.arange(_MEAN_RATE_POINTS) + 0.5)
    return float(np.mean(profile.rates_at(midpoints)))


def _expect_arguments(argument: str, separator: str, count: int, usage: str) -> list[str]:
    """Split ``argument`` on commas and insist on ``count`` non-empty parts."""
    if count == 0:
        if separator:
            raise InvalidProfile(f"expected {usage} without arguments (it uses --rate)")
        return []
    parts = [part.strip() for part in argument.split(",")] if separator else []
    if len(parts) != count or not all(parts):
        raise InvalidProfile(f"expected {usage}")
    return parts


def _number(text: str, what: str, *, allow_negative: bool = False) -> float:
    """A finite float (>= 0 unless ``allow_negative``), or ``InvalidProfile`` naming ``what``."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidProfile(f"{what} {_quote(text)} is not a number") from None
    if not math.isfinite(value):
        raise InvalidProfile(f"{what} must be a finite number, not {_quote(text)}")
    if value < 0 and not allow_negative:
        raise InvalidProfile(f"{what} must be >= 0, not {_quote(text)}")
    return value


def _duration(text: str, what: str) -> float:
    """Seconds from a duration such as ``30s``, or ``InvalidProfile`` naming ``what``."""
    try:
        return durations.parse_duration(text)
    except durations.InvalidDuration as error:
        raise InvalidProfile(f"{what}: {error}") from None


def _table_time(text: str) -> float:
    """A rate file's time cell: plain seconds (``30``, ``1.5``) or a duration (``30s``)."""
    try:
        value = float(text)
    except ValueError:
        return _duration(text, "time")
    if not math.isfinite(value) or value < 0:
        raise InvalidProfile(f"time must be a finite number >= 0, not {_quote(text)}")
    return value


def _check_rate(what: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise InvalidProfile(f"{what} must be a finite number >= 0, not {value}")


def _check_time(what: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise InvalidProfile(f"{what} must be a finite number of seconds >= 0, not {value}")


def _check_positive_time(what: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise InvalidProfile(f"{what} must be a finite number of seconds > 0, not {value}")


def _quote(text: str) -> str:
    """Quote user input for a one-line message: repr-style, cut when very long."""
    if len(text) > 64:
        text = text[:64] + "..."
    return repr(text)
