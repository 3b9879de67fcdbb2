"""Tests for model_server.service_time: spec parsing, means, seeded draws and batch growth.

Statistical checks draw many seeded samples and allow four standard errors, so they are exact
for a seed yet would catch a wrong mean, median or scale.
"""

import math

import numpy as np
import pytest

from model_server.service_time import ServiceTime, ServiceTimeSampler, parse_distribution

DRAWS = 20_000


def sampler(spec: str, seed: int = 1, batch_growth: float = 0.0) -> ServiceTimeSampler:
    return ServiceTimeSampler(parse_distribution(spec), np.random.default_rng(seed), batch_growth)


# --- parse_distribution -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("constant:20ms", ServiceTime("constant", 0.02)),
        ("constant:0", ServiceTime("constant", 0.0)),
        ("constant:1.5s", ServiceTime("constant", 1.5)),
        ("exponential:20ms", ServiceTime("exponential", 0.02)),
        ("exponential:250us", ServiceTime("exponential", 0.00025)),
        ("lognormal:20ms,0.5", ServiceTime("lognormal", 0.02, 0.5)),
        ("lognormal:1s,0", ServiceTime("lognormal", 1.0, 0.0)),
        ("lognormal:20ms,5", ServiceTime("lognormal", 0.02, 5.0)),
        ("lognormal:20ms,1e-1", ServiceTime("lognormal", 0.02, 0.1)),
    ],
)
def test_parse_valid(spec, expected):
    assert parse_distribution(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "use constant:20ms, exponential:20ms or lognormal:20ms,0.5"),
        ("constant", "use constant:20ms"),
        ("constant:", "use constant:20ms"),
        (":20ms", "use constant:20ms"),
        ("Constant:20ms", "use constant:20ms"),
        ("uniform:20ms", "use constant:20ms"),
        ("constant:20ms,1", "constant takes 1 value(s)"),
        ("exponential:20ms,0.5", "exponential takes 1 value(s)"),
        ("lognormal:20ms", "lognormal takes 2 value(s)"),
        ("lognormal:20ms,0.5,1", "lognormal takes 2 value(s)"),
        ("lognormal:20ms,-0.1", "sigma must be a number in [0, 5]"),
        ("lognormal:20ms,5.1", "sigma must be a number in [0, 5]"),
        ("lognormal:20ms,nan", "sigma must be a number in [0, 5]"),
        ("lognormal:20ms,inf", "sigma must be a number in [0, 5]"),
        ("lognormal:20ms,wide", "sigma must be a number in [0, 5]"),
        ("lognormal:20ms,", "sigma must be a number in [0, 5]"),
        ("constant:20", "missing unit"),
        ("constant:-20ms", "must not be negative"),
        ("exponential:fast", "expected a number"),
        ("lognormal:,0.5", "empty"),
    ],
)
def test_parse_invalid(spec, message):
    with pytest.raises(ValueError, match="invalid") as raised:
        parse_distribution(spec)
    text = str(raised.value)
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    "spec", ["constant:20ms", "exponential:1.5s", "lognormal:20ms,0.5", "lognormal:250us,2"]
)
def test_str_round_trips(spec):
    assert str(parse_distribution(spec)) == spec
    assert parse_distribution(str(parse_distribution(spec))) == parse_distribution(spec)


@pytest.mark.parametrize(
    ("spec", "mean"),
    [
        ("constant:20ms", 0.02),
        ("exponential:20ms", 0.02),
        ("lognormal:20ms,0", 0.02),
        ("lognormal:20ms,0.5", 0.02 * math.exp(0.125)),
        ("lognormal:10ms,1", 0.01 * math.exp(0.5)),
        ("constant:0", 0.0),
    ],
)
def test_mean_seconds(spec, mean):
    assert parse_distribution(spec).mean_seconds == pytest.approx(mean, rel=1e-12)


# --- draws ------------------------------------------------------------------------------------


def draw_many(spec: str, seed: int, count: int = DRAWS) -> np.ndarray:
    draws = sampler(spec, seed)
    return np.array([draws.draw() for _ in range(count)])


@pytest.mark.parametrize("spec", ["exponential:20ms", "lognormal:20ms,0.5"])
def test_draws_reproducible_for_a_seed_and_not_across_seeds(spec):
    draws = list(draw_many(spec, seed=7, count=100))
    assert list(draw_many(spec, seed=7, count=100)) == draws
    assert list(draw_many(spec, seed=8, count=100)) != draws
    assert len(set(draws)) == 100  # really drawn, not one value repeated


def test_constant_ignores_the_generator():
    assert {sampler("constant:20ms", seed=seed).draw() for seed in range(5)} == {0.02}


@pytest.mark.parametrize(("spec", "seed"), [("exponential:20ms", 1), ("exponential:3s", 2)])
def test_exponential_sample_mean(spec, seed):
    draws = draw_many(spec, seed)
    mean = parse_distribution(spec).mean_seconds
    standard_error = mean / math.sqrt(DRAWS)  # the exponential's sd equals its mean
    assert abs(draws.mean() - mean) < 4 * standard_error
    assert draws.min() >= 0


@pytest.mark.parametrize(
    ("spec", "seed"), [("lognormal:20ms,0.5", 1), ("lognormal:5ms,1.5", 2), ("lognormal:1s,0.1", 3)]
)
def test_lognormal_sample_median_and_mean(spec, seed):
    distribution = parse_distribution(spec)
    draws = draw_many(spec, seed)
    sigma = distribution.sigma
    # The log of the draws is normal(log median, sigma); its sample median has sd 1.2533 s/sqrt(n).
    median_error = 1.2533 * sigma / math.sqrt(DRAWS)
    assert abs(math.log(np.median(draws) / distribution.scale_seconds)) < 4 * median_error
    sd = distribution.mean_seconds * math.sqrt(math.exp(sigma**2) - 1)
    assert abs(draws.mean() - distribution.mean_seconds) < 4 * sd / math.sqrt(DRAWS)
    assert abs(np.log(draws).std() - sigma) < 4 * sigma / math.sqrt(2 * DRAWS)


def test_lognormal_with_zero_sigma_is_constant():
    assert set(draw_many("lognormal:20ms,0", 1)) == {0.02}


# --- batch growth -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("growth", "batch_size", "factor"),
    [
        (0.0, 1, 1.0),
        (0.0, 8, 1.0),
        (0.5, 1, 1.0),
        (0.5, 2, 1.5),
        (0.5, 3, 2.0),
        (0.25, 5, 2.0),
        (1.0, 4, 4.0),
    ],
)
@pytest.mark.parametrize("spec", ["constant:10ms", "exponential:10ms", "lognormal:10ms,0.5"])
def test_batch_growth(spec, growth, batch_size, factor):
    single = sampler(spec, seed=3).draw(1)
    batched = sampler(spec, seed=3, batch_growth=growth).draw(batch_size)
    assert batched == pytest.approx(single * factor, rel=1e-12)
