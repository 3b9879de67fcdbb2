"""PromQL generation: every query shape, label matchers from selectors, escaping."""

from __future__ import annotations

import pytest

from adapter import selectors
from adapter.catalog import BY_NAME, REQUIRED_REPLICAS, Signal
from adapter.prometheus import presets, promql
from adapter.prometheus.presets import MODEL_SERVER
from adapter.prometheus.sources import Counter, Gauge, Histogram, Series, SeriesLabels

QUERIES = promql.Queries(SeriesLabels(), 30.0, 15.0, 10.0)
SCOPE = (promql.equals("namespace", "ml"), promql.equals("deployment", "model"))


@pytest.mark.parametrize(
    ("selector", "matchers"),
    [
        ("", []),
        ("app=model", ['app="model"']),
        ("app==model", ['app="model"']),
        ("app!=model", ['app!="model"']),
        ("tier in (a,b)", ['tier=~"a|b"']),
        ("tier in (a)", ['tier="a"']),
        ("tier notin (a,b)", ['tier!~"a|b"']),
        ("canary", ['canary=~".+"']),
        ("!canary", ['canary=""']),
        ("app.kubernetes.io/name=m", ['app_kubernetes_io_name="m"']),
        ("v in (1.2,3-4)", ['v=~"1\\\\.2|3-4"']),
    ],
)
def test_selector_matchers(selector: str, matchers: list[str]) -> None:
    assert [str(m) for m in promql.selector_matchers(selectors.parse(selector))] == matchers


def test_integer_comparisons_cannot_be_matchers() -> None:
    with pytest.raises(promql.Untranslatable, match="gpu>2"):
        promql.selector_matchers(selectors.parse("gpu>2"))


def test_quoting_keeps_values_literal() -> None:
    assert promql.quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert promql.quote_regex("a.b*c|d(e)") == "a\\.b\\*c\\|d\\(e\\)"
    assert str(promql.one_of("pod", ["b", "a", "b"])) == 'pod=~"a|b"'
    assert str(promql.one_of("pod", ["a-1"])) == 'pod="a-1"'


def test_durations() -> None:
    assert [promql.duration(s) for s in (1.0, 30.0, 0.5, 2.25)] == ["1s", "30s", "500ms", "2250ms"]


def test_gauge_queries() -> None:
    gauge = MODEL_SERVER.inputs[Signal.QUEUE_DEPTH]
    assert isinstance(gauge, Gauge)
    assert QUERIES.gauge(gauge, SCOPE, ("namespace", "pod"), fresh_only=False) == [
        'sum by (namespace, pod) (avg_over_time(inference_queue_depth{namespace="ml",'
        'deployment="model"}[15s]))'
    ]
    assert QUERIES.gauge(gauge, SCOPE, (), fresh_only=True) == [
        'sum (avg_over_time(inference_queue_depth{namespace="ml",deployment="model"}[15s])'
        ' and on (namespace, pod) (time() - timestamp(inference_queue_depth{namespace="ml",'
        'deployment="model"}) <= 10))'
    ]


def test_a_gauge_of_several_series_is_a_query_per_series() -> None:
    """The provider adds the terms per group (a pod needs them all): PromQL's ``+`` would also
    match them, but a rate's failure counter may not exist yet, so every sum is done alike."""
    gauge = Gauge((Series("waiting", {"model": "m"}), Series("running")))
    assert QUERIES.gauge(gauge, (), ("pod",), fresh_only=False) == [
        'sum by (pod) (avg_over_time(waiting{model="m"}[15s]))',
        "sum by (pod) (avg_over_time(running{}[15s]))",
    ]


def test_a_fraction_is_averaged_over_a_pods_series() -> None:
    kv = presets.VLLM.inputs[Signal.KV_CACHE_UTILIZATION]
    assert isinstance(kv, Gauge)
    assert QUERIES.gauge(kv, (), ("deployment", "namespace", "pod"), fresh_only=False) == [
        "avg by (deployment, namespace, pod) (avg_over_time(vllm:kv_cache_usage_perc{}[15s]))"
    ]


def test_rate_and_latency_queries() -> None:
    requests = MODEL_SERVER.inputs[Signal.REQUESTS]
    latency = MODEL_SERVER.inputs[Signal.LATENCY]
    assert isinstance(requests, Counter) and isinstance(latency, Histogram)
    assert QUERIES.rates(
        requests.series, requests.freshness, SCOPE, ("deployment",), fresh_only=False
    ) == [
        "sum by (deployment) (rate(inference_request_duration_seconds_count"
        '{namespace="ml",deployment="model"}[30s]))'
    ]
    assert QUERIES.quantile(latency, 0.99, SCOPE, ("namespace", "pod")) == (
        "histogram_quantile(0.99, sum by (namespace, pod, le) (rate("
        'inference_request_duration_seconds_bucket{namespace="ml",deployment="model"}[30s])'
        " and on (namespace, pod) (time() - timestamp(inference_request_duration_seconds_count"
        '{namespace="ml",deployment="model"}) <= 10)))'
    )
    assert QUERIES.buckets(latency, SCOPE, (), fresh_only=True) == (
        "sum by (le) (rate(inference_request_duration_seconds_bucket"
        '{namespace="ml",deployment="model"}[30s]) and on (namespace, pod) (time() -'
        ' timestamp(inference_request_duration_seconds_count{namespace="ml",'
        'deployment="model"}) <= 10))'
    )
    assert QUERIES.newest_sample(latency, SCOPE, ("namespace", "pod")) == (
        "max by (namespace, pod) (timestamp(inference_request_duration_seconds_count"
        '{namespace="ml",deployment="model"}))'
    )


def test_label_names_come_from_configuration() -> None:
    queries = promql.Queries(SeriesLabels(pod="kubernetes_pod", namespace="ns"), 30, 15, 10)
    assert queries.per_pod == ("ns", "kubernetes_pod")
    latency = MODEL_SERVER.inputs[Signal.LATENCY]
    assert isinstance(latency, Histogram)
    assert "on (ns, kubernetes_pod)" in queries.buckets(latency, (), (), fresh_only=True)


def test_presets_are_data() -> None:
    """A server without a histogram serves no latency quantile, says which metrics it has, and
    why it lacks the others."""
    gauges_only = presets.generic(queue_gauge="q")
    assert gauges_only.served() == ("inference_queue_depth",)
    assert gauges_only.source_of(BY_NAME["inference_latency_p99_seconds"]) is None
    assert gauges_only.unserved()["inference_latency_p99_seconds"] == (
        "the generic preset has no latency: not named on the command line (--latency-histogram)"
    )
    assert "inference_time_to_first_token_p99_seconds" not in MODEL_SERVER.served()
    # no server's Prometheus metrics give the required replicas (the time each request held a
    # slot): no preset serves them
    assert all(REQUIRED_REPLICAS not in preset.served() for preset in presets.PRESETS.values())
    assert promql.is_label_name("pod") and not promql.is_label_name("app.kubernetes.io/name")


def test_literals_are_printable_ascii() -> None:
    """Names and values reach the engine as escapes where PromQL's lexer would trip (the real
    engine reads them back: tests/prometheus/test_promql_literals.py)."""
    assert promql.quote("\ufffd\t\U0001f600é") == '"\\ufffd\\u0009\\U0001f600\\u00e9"'
    assert str(promql.one_of("pod", ["a\ufffd", "b"])) == 'pod=~"a\\ufffd|b"'


@pytest.mark.parametrize("selector", ["1abc=x", "9.example.com/tier in (a,b)", "!2fa"])
def test_a_key_whose_label_name_promql_cannot_write_is_refused(selector: str) -> None:
    """``labelmap`` turns ``1abc`` into the label ``1abc``, which a PromQL matcher cannot name:
    refused with a reason (a 400), never sent as a query the engine rejects (a 503)."""
    with pytest.raises(promql.Untranslatable, match="no Prometheus label name"):
        promql.selector_matchers(selectors.parse(selector))
