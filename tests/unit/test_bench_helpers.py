"""The benchmark helpers whose arithmetic the published figures rest on (no benchmark runs here)."""

import math

import pytest

from bench import freshness, stats


def test_linear_fit_recovers_a_line():
    slope, intercept = stats.linear_fit([10, 100, 1000], [2.0 + 0.03 * x for x in (10, 100, 1000)])
    assert slope == pytest.approx(0.03)
    assert intercept == pytest.approx(2.0)


def test_linear_fit_needs_two_points():
    with pytest.raises(ValueError):
        stats.linear_fit([1], [1])


@pytest.mark.parametrize(
    ("y2", "exponent"),
    [(10.0, 1.0), (100.0, 2.0), (10.0 * math.log(10_000) / math.log(1_000), 1.125)],
)
def test_growth_exponent(y2, exponent):
    assert stats.growth_exponent(1_000, 1.0, 10_000, y2) == pytest.approx(exponent, abs=1e-3)


def test_growth_exponent_of_nothing_is_nan():
    assert math.isnan(stats.growth_exponent(1, 0.0, 10, 1.0))


def _pod(step, pushes):
    return {"pod": "fresh-00", "step_unix": step, "pushes": pushes}


def test_freshness_trial_splits_the_delay_at_the_first_push_after_the_step():
    pushes = [(99.0, 99.01), (100.3, 100.31), (101.3, 101.31)]
    one = freshness.trial(_pod(100.0, pushes), visible=101.35)
    assert one["valid"]
    assert one["delay_seconds"] == pytest.approx(1.35)
    assert one["wait_for_push_seconds"] == pytest.approx(0.3)
    assert one["delivery_seconds"] == pytest.approx(0.01)
    assert one["push_to_visible_seconds"] == pytest.approx(1.04)
    assert one["pushes_until_visible"] == 2


@pytest.mark.parametrize("visible", [None, 99.5])
def test_freshness_trial_never_visible_or_too_early_is_invalid(visible):
    assert not freshness.trial(_pod(100.0, [(100.3, 100.31)]), visible)["valid"]
