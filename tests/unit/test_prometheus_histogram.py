"""``bucket_quantile``: Prometheus' ``histogram_quantile`` arithmetic on pooled buckets.

The same function is checked against the real Prometheus on real data in
``tests/prometheus/test_provider.py``; these are the edge cases by hand.
"""

from __future__ import annotations

import math

import pytest

from adapter.prometheus.engine import BackendError, decode_vector
from adapter.prometheus.histogram import bucket_quantile

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, {0.1: 10, 0.2: 20, INF: 20}, 0.1),
        (0.75, {0.1: 10, 0.2: 20, INF: 20}, 0.15),
        (0.25, {0.1: 10, 0.2: 20, INF: 20}, 0.05),  # the first bucket starts at 0
        (0.99, {0.1: 10, 0.2: 10, INF: 20}, 0.2),  # rank in +Inf: the second-highest bound
        (0.5, {0.1: 10, 0.2: 8, INF: 20}, 0.1),  # counts forced monotonic
        (0.5, {-1.0: 10, 0.2: 20, INF: 20}, -1.0),  # a first bucket at or below 0
        (1.5, {0.1: 1, INF: 1}, INF),
        (-0.5, {0.1: 1, INF: 1}, -INF),
    ],
)
def test_bucket_quantile(q: float, buckets: dict[float, float], expected: float) -> None:
    assert bucket_quantile(q, buckets) == pytest.approx(expected)


@pytest.mark.parametrize(
    "buckets",
    [{0.1: 1.0, 0.2: 2.0}, {INF: 3.0}, {0.1: 0.0, INF: 0.0}, {}],
)
def test_no_answer_is_nan(buckets: dict[float, float]) -> None:
    """No +Inf bucket, one bucket, no observation: NaN, as Prometheus answers."""
    assert math.isnan(bucket_quantile(0.9, buckets))


def test_decode_vector() -> None:
    body = (
        b'{"status":"success","data":{"resultType":"vector","result":['
        b'{"metric":{"pod":"a"},"value":[1700000000.5,"NaN"]},'
        b'{"metric":{},"value":[1700000000.5,"+Inf"]}]}}'
    )
    first, second = decode_vector(body)
    assert first.labels == {"pod": "a"} and math.isnan(first.value)
    assert first.evaluated_at == 1700000000.5 and second.value == INF


@pytest.mark.parametrize(
    ("body", "outcome", "cause"),
    [
        (b'{"status":"error","errorType":"bad_data","error":"parse error"}', "error", "bad_data"),
        (b'{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}', "bad_answer",
         "scalar"),
        (b"<html>", "bad_answer", "not a query result"),
        (b'{"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}}',
         "bad_answer", "not a query result"),
        (b'{"status":"success","data":{"resultType":"vector","result":'
         b'[{"metric":["pod"],"value":[1,"1"]}]}}', "bad_answer", "labels"),
        (b'{"status":"success","data":{"resultType":"vector","result":'
         b'[{"metric":{"pod":7},"value":[1,"1"]}]}}', "bad_answer", "labels"),
    ],
)  # fmt: skip
def test_decode_refuses_what_is_not_a_vector(body: bytes, outcome: str, cause: str) -> None:
    with pytest.raises(BackendError, match=cause) as caught:
        decode_vector(body)
    assert caught.value.outcome == outcome
