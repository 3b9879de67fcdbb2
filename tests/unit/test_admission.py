"""``adapter.admission`` (pushes in flight, a rate per pod) and ``adapter.rejections`` (which
refused pushes get a log line): pure, time moved by hand."""

from __future__ import annotations

import pytest

from adapter import admission, rejections
from adapter.report import PodRef

POD = PodRef("ml", "model-a")


def test_in_flight_has_a_ceiling_and_gives_places_back() -> None:
    in_flight = admission.InFlight(2)
    assert in_flight.enter() and in_flight.enter()
    assert not in_flight.enter()
    in_flight.leave()
    assert in_flight.enter()
    assert in_flight.count == 2


def test_a_pod_may_burst_its_rate_then_waits_for_tokens() -> None:
    rates = admission.PodRates(10, capacity=100)
    assert [rates.admit(POD, 100.0) for _ in range(10)] == [None] * 10
    assert rates.admit(POD, 100.0) == pytest.approx(0.1)
    assert rates.admit(PodRef("ml", "model-b"), 100.0) is None, "pods have their own buckets"
    assert rates.admit(POD, 100.05) == pytest.approx(0.05)
    assert rates.admit(POD, 100.1) is None
    # refused pushes take no token: 10 a second go through, whatever is tried
    allowed = sum(rates.admit(POD, 200 + i / 100) is None for i in range(301))
    assert allowed == 10 + 30  # a full bucket, then 10 a second for the 3 s after


def test_a_slow_rate_still_lets_one_push_through() -> None:
    rates = admission.PodRates(0.5, capacity=10)
    assert rates.admit(POD, 0.0) is None
    assert rates.admit(POD, 1.0) == pytest.approx(1.0)
    assert rates.admit(POD, 2.0) is None


def test_pod_rates_are_bounded_and_retained_with_the_store() -> None:
    rates = admission.PodRates(1, capacity=3)
    for i in range(5):
        rates.admit(PodRef("ml", f"p{i}"), 0.0)
    assert len(rates) == 3
    assert rates.admit(PodRef("ml", "p0"), 0.0) is None, "forgotten: a full bucket again"
    assert rates.retain(lambda pod: pod.name == "p0") == 2
    assert len(rates) == 1


@pytest.mark.parametrize(("seconds", "header"), [(0.0, "1"), (0.01, "1"), (1.0, "1"), (1.2, "2")])
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, header: str) -> None:
    assert admission.retry_after_header(seconds) == header


def test_a_refusal_is_logged_once_a_minute_per_reason_and_pusher() -> None:
    log = rejections.RejectionLog()
    assert log.note("Invalid", "ml/a", 0.0) == ("ml/a", 0)
    assert log.note("Invalid", "ml/a", 1.0) is None
    assert log.note("Invalid", "ml/a", 59.0) is None
    assert log.note("TooManyRequests", "ml/a", 2.0) == ("ml/a", 0), "another reason"
    assert log.note("Invalid", "ml/b", 3.0) == ("ml/b", 0), "another pod"
    assert log.note("Invalid", "ml/a", 60.0) == ("ml/a", 2), "a new minute, with the count"
    assert log.note("Invalid", "ml/b", 4.0) is None
    assert log.expired(63.0) == [("Invalid", "ml/b", 1)], "closing lines for counted ones only"
    assert len(log) == 1


def test_the_refusal_log_is_bounded() -> None:
    log = rejections.RejectionLog(max_keys=2)
    assert log.note("Invalid", "ml/a", 0.0) == ("ml/a", 0)
    assert log.note("Invalid", "ml/b", 0.0) == ("ml/b", 0)
    assert log.note("Invalid", "ml/c", 0.0) == (rejections.OTHER, 0)
    assert log.note("Invalid", "ml/d", 0.0) is None
    assert len(log) == 3
