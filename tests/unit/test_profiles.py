"""Rate profiles: spec parsing, rates over time, and the statistics of the arrivals they draw.

The statistical checks use fixed seeds, so they are deterministic; their bounds are several
standard deviations wide, so a correct generator passes for any seed, while a wrong rate, a
regular (non-Poisson) spacing or a step at the wrong time lands far outside them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_server import profiles
from model_server.profiles import (
    ConstantProfile,
    InvalidProfile,
    PiecewiseProfile,
    RampProfile,
    SineProfile,
    StepProfile,
)

SEEDS = [0, 1, 2, 3]
FILES = {
    "rates.csv": "time_seconds,rate\n0,10\n30,100\n",
    "bare.csv": "# no header\n5, 20\n\n1m, 40\n",
    "empty.csv": "time_seconds,rate\n",
    "backwards.csv": "0,10\n30,20\n20,5\n",
    "three.csv": "0,10,5\n",
    "badrate.csv": "0,ten\n",
    "negative.csv": "0,-3\n",
    "badtime.csv": "0,1\nsoon,2\n",
    "negtime.csv": "-5,10\n",
}


def read_text(path: str) -> str:
    """A stand-in file system for ``csv:`` profiles."""
    try:
        return FILES[path]
    except KeyError:
        raise FileNotFoundError(2, "No such file or directory", path) from None


def parse(spec: str, rate: float = 100.0, duration_seconds: float = 60.0) -> profiles.RateProfile:
    return profiles.parse_profile(
        spec, rate=rate, duration_seconds=duration_seconds, read_text=read_text
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("constant", ConstantProfile(100.0)),
        ("  Constant ", ConstantProfile(100.0)),
        ("step:30s,200", StepProfile(100.0, 30.0, 200.0)),
        ("step:1m30s, 0", StepProfile(100.0, 90.0, 0.0)),
        ("step:500ms,1.5", StepProfile(100.0, 0.5, 1.5)),
        ("ramp:500", RampProfile(100.0, 500.0, 60.0)),
        ("ramp:0", RampProfile(100.0, 0.0, 60.0)),
        ("sine:50,20s", SineProfile(100.0, 50.0, 20.0)),
        ("sine:-50,1m", SineProfile(100.0, -50.0, 60.0)),
        ("csv:rates.csv", PiecewiseProfile((0.0, 30.0), (10.0, 100.0))),
        ("csv:bare.csv", PiecewiseProfile((5.0, 60.0), (20.0, 40.0))),
    ],
)
def test_valid_specs(spec: str, expected: profiles.RateProfile) -> None:
    profile = parse(spec)
    assert profile == expected
    assert isinstance(profile, profiles.RateProfile)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown kind 'nope'"),
        ("", "unknown kind ''"),
        ("constant:5", "without arguments"),
        ("step", "expected step:AT,RATE2"),
        ("step:30s", "expected step:AT,RATE2"),
        ("step:30s,", "expected step:AT,RATE2"),
        ("step:30s,1,2", "expected step:AT,RATE2"),
        ("step:30,200", "missing unit"),
        ("step:30s,abc", "RATE2 'abc' is not a number"),
        ("step:30s,-5", "RATE2 must be >= 0"),
        ("step:30s,inf", "finite"),
        ("step:-1s,5", "must not be negative"),
        ("ramp:", "expected ramp:TO_RATE"),
        ("ramp:fast", "TO_RATE 'fast' is not a number"),
        ("ramp:nan", "finite"),
        ("sine:50", "expected sine:AMPLITUDE,PERIOD"),
        ("sine:50,0s", "sine period must be"),
        ("sine:x,10s", "AMPLITUDE 'x' is not a number"),
        ("sine:50,10", "missing unit"),
        ("csv:", "expected csv:PATH"),
        ("csv:missing.csv", "cannot read 'missing.csv': No such file or directory"),
        ("csv:empty.csv", "no 'time_seconds,rate' rows"),
        ("csv:backwards.csv", "times must increase"),
        ("csv:three.csv", "line 1: expected 'time_seconds,rate'"),
        ("csv:badrate.csv", "line 1: rate 'ten' is not a number"),
        ("csv:negative.csv", "line 1: rate must be >= 0"),
        ("csv:badtime.csv", 'line 2: time: invalid duration "soon"'),
        ("csv:negtime.csv", "line 1: time must be a finite number >= 0"),
    ],
)
def test_invalid_specs_raise_one_line_naming_the_spec(spec: str, message: str) -> None:
    with pytest.raises(InvalidProfile) as caught:
        parse(spec)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith(f"invalid profile {spec!r}")


def test_invalid_base_rate_is_rejected() -> None:
    with pytest.raises(InvalidProfile, match="rate must be a finite number >= 0"):
        parse("constant", rate=-1.0)
    with pytest.raises(InvalidProfile, match="ramp duration must be"):
        parse("ramp:10", duration_seconds=0.0)


def test_invalid_profile_is_a_value_error() -> None:
    assert issubclass(InvalidProfile, ValueError)


@pytest.mark.parametrize(
    ("profile", "t", "rate"),
    [
        (ConstantProfile(7.0), 0.0, 7.0),
        (ConstantProfile(7.0), 1e6, 7.0),
        (StepProfile(10.0, 30.0, 200.0), 0.0, 10.0),
        (StepProfile(10.0, 30.0, 200.0), 29.999, 10.0),
        (StepProfile(10.0, 30.0, 200.0), 30.0, 200.0),
        (StepProfile(10.0, 30.0, 200.0), 100.0, 200.0),
        (RampProfile(100.0, 500.0, 60.0), 0.0, 100.0),
        (RampProfile(100.0, 500.0, 60.0), 15.0, 200.0),
        (RampProfile(100.0, 500.0, 60.0), 60.0, 500.0),
        (RampProfile(100.0, 500.0, 60.0), 90.0, 500.0),
        (RampProfile(500.0, 100.0, 60.0), 30.0, 300.0),
        (SineProfile(100.0, 50.0, 20.0), 0.0, 100.0),
        (SineProfile(100.0, 50.0, 20.0), 5.0, 150.0),
        (SineProfile(100.0, 50.0, 20.0), 15.0, 50.0),
        (SineProfile(10.0, 50.0, 20.0), 15.0, 0.0),  # 10 - 50 clipped at 0
        (PiecewiseProfile((5.0, 60.0), (20.0, 40.0)), 0.0, 0.0),
        (PiecewiseProfile((5.0, 60.0), (20.0, 40.0)), 5.0, 20.0),
        (PiecewiseProfile((5.0, 60.0), (20.0, 40.0)), 59.0, 20.0),
        (PiecewiseProfile((5.0, 60.0), (20.0, 40.0)), 60.0, 40.0),
        (PiecewiseProfile((5.0, 60.0), (20.0, 40.0)), 1e9, 40.0),
    ],
)
def test_rate_at(profile: profiles.RateProfile, t: float, rate: float) -> None:
    assert profile.rate_at(t) == pytest.approx(rate, abs=1e-9)
    assert profile.rates_at(np.array([t]))[0] == pytest.approx(rate, abs=1e-9)


@pytest.mark.parametrize(
    ("profile", "max_rate"),
    [
        (ConstantProfile(7.0), 7.0),
        (StepProfile(10.0, 30.0, 200.0), 200.0),
        (StepProfile(200.0, 30.0, 10.0), 200.0),
        (RampProfile(500.0, 100.0, 60.0), 500.0),
        (SineProfile(100.0, -50.0, 20.0), 150.0),
        (PiecewiseProfile((0.0, 1.0, 2.0), (3.0, 9.0, 1.0)), 9.0),
    ],
)
def test_max_rate_is_a_tight_upper_bound(profile: profiles.RateProfile, max_rate: float) -> None:
    grid = np.linspace(0.0, 120.0, 120_001)
    rates = profile.rates_at(grid)
    assert profile.max_rate == max_rate
    assert rates.max() <= max_rate + 1e-9
    assert rates.max() >= max_rate - 1e-3 * max_rate
    assert rates.min() >= 0.0


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def within_poisson(count: int, mean: float, sds: float = 4.0) -> bool:
    """Whether a Poisson count is within ``sds`` standard deviations (sqrt(mean)) of its mean."""
    return abs(count - mean) <= sds * math.sqrt(mean)


@pytest.mark.parametrize("seed", SEEDS)
def test_constant_count_matches_rate_times_duration(seed: int) -> None:
    times = profiles.arrival_times(ConstantProfile(100.0), 100.0, rng(seed))
    assert within_poisson(times.size, 10_000)
    assert np.all(np.diff(times) >= 0)
    assert times.min() >= 0.0
    assert times.max() < 100.0


@pytest.mark.parametrize("seed", SEEDS)
def test_constant_gaps_are_exponential(seed: int) -> None:
    """Coefficient of variation 1, P(gap < mean) = 1 - 1/e, and a KS distance to Exp(rate)."""
    rate = 200.0
    gaps = np.diff(profiles.arrival_times(ConstantProfile(rate), 100.0, rng(seed)))
    n = gaps.size
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.04)
    # The sample CV of n exponential gaps has a standard error of about 1/sqrt(n) ~ 0.007.
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.04)
    assert np.mean(gaps < gaps.mean()) == pytest.approx(1 - math.exp(-1), abs=0.02)
    ordered = np.sort(gaps)
    expected_cdf = 1.0 - np.exp(-rate * ordered)
    empirical_high = np.arange(1, n + 1) / n
    empirical_low = np.arange(0, n) / n
    distance = max(np.max(empirical_high - expected_cdf), np.max(expected_cdf - empirical_low))
    assert distance < 1.95 / math.sqrt(n)  # the KS critical value at about the 0.1% level


def test_regular_spacing_would_fail_the_exponential_checks() -> None:
    """The gap checks above can fail: evenly spaced arrivals have CV 0."""
    gaps = np.diff(np.linspace(0.0, 100.0, 20_000))
    assert gaps.std() / gaps.mean() < 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_step_counts_before_and_after_the_step(seed: int) -> None:
    times = profiles.arrival_times(StepProfile(50.0, 20.0, 200.0), 40.0, rng(seed))
    before = int(np.sum(times < 20.0))
    after = int(np.sum(times >= 20.0))
    assert within_poisson(before, 50.0 * 20)
    assert within_poisson(after, 200.0 * 20)


@pytest.mark.parametrize("seed", SEEDS)
def test_ramp_count_is_the_area_under_the_ramp(seed: int) -> None:
    times = profiles.arrival_times(RampProfile(0.0, 200.0, 50.0), 50.0, rng(seed))
    assert within_poisson(times.size, 0.5 * 200.0 * 50.0)
    # A linear rate from 0: the first half of the time holds a quarter of the arrivals.
    assert within_poisson(int(np.sum(times < 25.0)), 0.25 * 0.5 * 200.0 * 50.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_sine_count_and_silence_where_the_rate_is_cut_off(seed: int) -> None:
    profile = SineProfile(100.0, 300.0, 10.0)  # zero for a good part of each period
    times = profiles.arrival_times(profile, 100.0, rng(seed))
    assert np.all(profile.rates_at(times) > 0)
    grid = np.linspace(0.0, 100.0, 1_000_001)
    expected = float(np.mean(profile.rates_at(grid))) * 100.0
    assert within_poisson(times.size, expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_piecewise_counts_per_segment(seed: int) -> None:
    profile = PiecewiseProfile((5.0, 25.0), (100.0, 20.0))
    times = profiles.arrival_times(profile, 45.0, rng(seed))
    assert times.min() >= 5.0
    assert within_poisson(int(np.sum(times < 25.0)), 100.0 * 20)
    assert within_poisson(int(np.sum(times >= 25.0)), 20.0 * 20)


def test_same_seed_same_schedule_and_different_seed_different_schedule() -> None:
    profile = SineProfile(100.0, 50.0, 7.0)
    first = profiles.arrival_times(profile, 30.0, rng(42))
    again = profiles.arrival_times(profile, 30.0, rng(42))
    other = profiles.arrival_times(profile, 30.0, rng(43))
    np.testing.assert_array_equal(first, again)
    assert first.size != other.size or not np.array_equal(first, other)


@pytest.mark.parametrize("seed", SEEDS)
def test_small_blocks_keep_the_distribution_and_the_order(seed: int) -> None:
    """Blocks only bound memory: with 50 candidates per block there are ~400 of them."""
    times = profiles.arrival_times(
        StepProfile(50.0, 20.0, 200.0), 40.0, rng(seed), block_candidates=50
    )
    assert np.all(np.diff(times) >= 0)
    assert times.max() < 40.0
    assert within_poisson(int(np.sum(times < 20.0)), 1_000)
    assert within_poisson(int(np.sum(times >= 20.0)), 4_000)


def test_max_count_keeps_the_earliest_arrivals() -> None:
    full = profiles.arrival_times(ConstantProfile(100.0), 10.0, rng(5))
    bounded = profiles.arrival_times(ConstantProfile(100.0), 10.0, rng(5), max_count=17)
    assert bounded.size == 17
    np.testing.assert_array_equal(bounded, full[:17])


def test_max_count_stops_drawing_early() -> None:
    """A count bound makes an absurdly long run cheap: only the first block is drawn."""
    times = profiles.arrival_times(ConstantProfile(1000.0), 1e9, rng(0), max_count=10)
    assert times.size == 10


@pytest.mark.parametrize(
    ("profile", "duration", "max_count"),
    [
        (ConstantProfile(0.0), 10.0, None),
        (PiecewiseProfile((0.0,), (0.0,)), 10.0, None),
        (ConstantProfile(100.0), 0.0, None),
        (ConstantProfile(100.0), 10.0, 0),
    ],
)
def test_nothing_to_send_gives_an_empty_array(
    profile: profiles.RateProfile, duration: float, max_count: int | None
) -> None:
    times = profiles.arrival_times(profile, duration, rng(0), max_count)
    assert times.size == 0
    assert times.dtype == np.float64


@pytest.mark.parametrize(
    ("duration", "max_count", "block"),
    [(-1.0, None, 10), (math.inf, None, 10), (math.nan, None, 10), (1.0, -1, 10), (1.0, None, 0)],
)
def test_arrival_times_rejects_nonsense(duration: float, max_count: int | None, block: int) -> None:
    with pytest.raises(ValueError):
        profiles.arrival_times(
            ConstantProfile(1.0), duration, rng(0), max_count, block_candidates=block
        )


@pytest.mark.parametrize(
    ("profile", "start", "end", "mean"),
    [
        (ConstantProfile(7.0), 0.0, 10.0, 7.0),
        (RampProfile(100.0, 500.0, 60.0), 0.0, 60.0, 300.0),
        (StepProfile(10.0, 5.0, 30.0), 0.0, 10.0, 20.0),
        (SineProfile(100.0, 50.0, 10.0), 0.0, 20.0, 100.0),
        (ConstantProfile(7.0), 3.0, 3.0, 7.0),
    ],
)
def test_mean_rate(profile: profiles.RateProfile, start: float, end: float, mean: float) -> None:
    assert profiles.mean_rate(profile, start, end) == pytest.approx(mean, rel=1e-3)


def test_profile_help_names_every_kind() -> None:
    for kind in ("constant", "step:AT,RATE2", "ramp:TO_RATE", "sine:AMPLITUDE,PERIOD", "csv:PATH"):
        assert kind in profiles.PROFILE_HELP
