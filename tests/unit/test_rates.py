"""``adapter.rates``: what arrived at a pod over the rate window, from its running totals."""

from __future__ import annotations

import pytest

from adapter.rates import Change, RateHistory
from adapter.report import CONCURRENCY, QUEUE_DEPTH, REQUESTS_SHED

WINDOW = 10.0
SLICE = 1.0
START = 1000.0


def pushed(history: RateHistory, at: float, completed: int, **gauges: float) -> None:
    names = {"shed": REQUESTS_SHED, "in_system": CONCURRENCY, "queue": QUEUE_DEPTH}
    history.record(at, completed, {names[k]: v for k, v in gauges.items()}, WINDOW, SLICE)


def steady(seconds: int, per_second: int = 50, **gauges: float) -> RateHistory:
    history = RateHistory()
    for second in range(seconds):
        pushed(history, START + second + 0.3, per_second, **gauges)
    return history


def test_a_steady_pod_arrives_at_what_it_completes() -> None:
    history = steady(60, in_system=3.0, queue=0.5, shed=0.0)
    change = history.change(START + 59.5, WINDOW, START + 0.3, SLICE)
    assert change == Change(10.0, 500.0, 0.0, 0.0, 0.0, 0.5)
    assert change.arrived / change.seconds == 50.0


def test_an_overloaded_pod_arrives_at_completions_plus_growth_plus_shed() -> None:
    # 100/s arrive at a pod that completes 70/s: its queue grows by 30/s up to 150 (5 s),
    # then it sheds 30/s
    history = steady(20, per_second=70, in_system=4.0, queue=0.0, shed=0.0)
    for second in range(1, 11):
        queue = min(150.0, 30.0 * second)
        shed = 30.0 * max(0, second - 5)
        pushed(history, START + 19.3 + second, 70, in_system=4 + queue, queue=queue, shed=shed)
    change = history.change(START + 29.5, WINDOW, START + 0.3, SLICE)
    assert change is not None
    assert (change.completed, change.in_system_growth, change.shed) == (700, 150, 150)
    assert change.arrived / change.seconds == pytest.approx(100.0)
    assert (change.queue_growth, change.queue) == (150, 150)


def test_shed_counts_the_counter_increase_and_survives_a_restart() -> None:
    history = RateHistory()
    for second, total in enumerate([100.0, 100.0, 130.0, 160.0, 5.0, 25.0]):
        pushed(history, START + second, 10, shed=total)
    change = history.change(START + 5, 4.0, START, SLICE)
    assert change is not None
    assert change.shed == 30 + 30 + 5 + 20  # from the sample at +1 s: the reset counts its 5


def test_what_a_pod_does_not_report_counts_as_nothing() -> None:
    history = steady(15)  # no gauges at all
    change = history.change(START + 14.5, WINDOW, START + 0.3, SLICE)
    assert change is not None
    assert (change.shed, change.in_system_growth, change.queue_growth, change.queue) == (0, 0, 0, 0)
    assert change.completed == 500


def test_a_counter_first_reported_midway_does_not_count_what_came_before() -> None:
    history = steady(12)
    pushed(history, START + 12.3, 50, shed=1e6)
    pushed(history, START + 13.3, 50, shed=1e6 + 7)
    change = history.change(START + 13.5, WINDOW, START + 0.3, SLICE)
    assert change is not None and change.shed == 7.0  # not the million before it was known


def test_a_young_pod_is_measured_from_a_slice_before_its_first_report() -> None:
    history = steady(4, per_second=30, in_system=2.0)
    change = history.change(START + 3.5, WINDOW, START + 0.3, SLICE)
    assert change is not None
    assert change.seconds == pytest.approx(3.0 + SLICE)
    assert change.completed == 120


def test_one_sample_per_slice_keeps_the_newest_totals() -> None:
    history = RateHistory()
    pushed(history, START + 0.1, 10, in_system=1.0)
    pushed(history, START + 0.6, 10, in_system=5.0)  # the same slice: replaces, totals kept
    pushed(history, START + 1.1, 10, in_system=2.0)
    assert history.held_bytes() == RateHistory().held_bytes() + 2 * 5 * 8
    change = history.change(START + 1.2, WINDOW, START + 0.1, SLICE)
    assert change is not None and change.completed == 30


def test_the_history_stays_within_the_window() -> None:
    history = steady(3600)
    assert history.held_bytes() <= RateHistory().held_bytes() + (WINDOW / SLICE + 2) * 5 * 8


def test_a_pod_without_reports_has_no_change() -> None:
    assert RateHistory().change(START, WINDOW, START, SLICE) is None


def test_a_pod_that_stopped_reporting_counts_over_the_part_of_the_window_it_reported_on() -> None:
    history = steady(30)  # 50/s, then it exits after its report at +29.3 s
    on_time = history.change(START + 29.5, WINDOW, START + 0.3, SLICE)
    assert on_time is not None and on_time.arrived / on_time.seconds == 50.0
    for now, share in [(START + 34.3, 0.5), (START + 38.3, 0.1), (START + 45.0, 0.0)]:
        late = history.change(now, WINDOW, START + 0.3, SLICE)
        assert late is not None
        assert late.arrived / late.seconds == pytest.approx(50.0 * share, abs=5.0)
        assert late.arrived / late.seconds < 50.0 * share + 5.0


def test_a_report_a_little_late_is_still_on_time() -> None:
    history = steady(30)
    change = history.change(START + 30.7, WINDOW, START + 0.3, SLICE)  # 1.4 s after the last
    assert change is not None and change.arrived / change.seconds == 50.0
