"""``localcluster.metrics_client``: the HPA's requests and error wording, against the real adapter
over TLS, and against a small aggregator-like server for answers the adapter never gives."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web

from adapter import quantity
from adapter.client import PodIdentity
from localcluster import hpa
from localcluster import replica_calculator as rc
from localcluster.metrics_client import ApiFailure, MetricsClient, resource_for, selector_text
from localcluster.ports import free_port
from tests.api.conftest import FakeClock, RunningAdapter, serve_adapter
from tests.conftest import Pki

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1/namespaces/ml"
CUSTOM_FAILED = "unable to fetch metrics from custom metrics API: "
EXTERNAL_FAILED = "unable to fetch metrics from external metrics API: "

POD_A = PodIdentity("ml", "model-7d4b9c-aaaaa", "uid-a", {"app": "model", "tier": "gpu"}, "model")
POD_B = PodIdentity("ml", "model-7d4b9c-bbbbb", "uid-b", {"app": "model", "tier": "cpu"}, "model")
OTHER = PodIdentity("ml", "other-5f5f5f-ccccc", "uid-c", {"app": "other"}, "other")
PUSHED_AT = FakeClock().now
DEPLOYMENT = hpa.ObjectReference("Deployment", "model", "apps/v1")
TARGET = hpa.MetricTarget("AverageValue", average_value_milli=4000)
ON_OTHER = {"matchLabels": {"deployment": "other"}}


def pods_metric(name: str, selector: dict[str, Any] | None = None) -> hpa.MetricSpec:
    return hpa.MetricSpec(hpa.PODS, TARGET, metric_name=name, selector=selector)


def object_metric(
    name: str, described: hpa.ObjectReference = DEPLOYMENT, selector: dict[str, Any] | None = None
) -> hpa.MetricSpec:
    target = hpa.MetricTarget("Value", value_milli=4000)
    return hpa.MetricSpec(
        hpa.OBJECT, target, metric_name=name, selector=selector, described_object=described
    )


def external_metric(name: str, selector: dict[str, Any] | None = None) -> hpa.MetricSpec:
    return hpa.MetricSpec(hpa.EXTERNAL, TARGET, metric_name=name, selector=selector)


# -- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "api_version", "resource"),
    [
        ("Deployment", "apps/v1", "deployments.apps"),
        ("Pod", "v1", "pods"),
        ("Service", "v1", "services"),
        ("Namespace", "v1", "namespaces"),
        (
            "InferencePool",
            "inference.networking.x-k8s.io/v1alpha2",
            "inferencepools.inference.networking.x-k8s.io",
        ),
        ("StatefulSet", "apps/v1", "statefulsets.apps"),
        ("Deployment", "", "deployments"),  # no apiVersion: no group, as the HPA's mapping sees it
        ("Widget", "v1", "widgets"),
    ],
)
def test_resource_for(kind: str, api_version: str, resource: str) -> None:
    assert resource_for(hpa.ObjectReference(kind, "x", api_version)) == resource


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        (None, ""),
        ({}, ""),
        ({"matchLabels": {}}, ""),
        ({"matchLabels": {"app": "model"}}, "app=model"),
        ({"matchLabels": {"tier": "gpu", "app": "model"}}, "app=model,tier=gpu"),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu", "cpu"]}]},
            "tier in (cpu,gpu)",
        ),
        (
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["tpu"]}]},
            "tier notin (tpu)",
        ),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, "gpu"),
        ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, "!canary"),
        (
            {
                "matchLabels": {"app": "model"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["gpu"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
            "app=model,tier in (gpu),!canary",
        ),
    ],
)
def test_selector_text(selector: dict[str, Any] | None, text: str) -> None:
    assert selector_text(selector) == text


@pytest.mark.parametrize(
    "expression",
    [{"key": "tier", "operator": "Equals", "values": ["gpu"]}, {"key": "tier"}],
)
def test_an_operator_with_no_text_form_fails_the_metric(expression: dict[str, Any]) -> None:
    """Not a KeyError out of the HPA's sync: a failure of that metric (which the HPA's own
    check of the selector reports first, in upstream's words)."""
    with pytest.raises(ApiFailure, match="is not a valid label selector operator"):
        selector_text({"matchExpressions": [expression]})


# -- against the adapter -----------------------------------------------------------------------


@pytest.fixture
async def adapter(pki: Pki) -> AsyncIterator[RunningAdapter]:
    async with serve_adapter(pki) as running:
        yield running


@pytest.fixture
async def pushed(adapter: RunningAdapter) -> RunningAdapter:
    """Three pods of two Deployments pushed at ``PUSHED_AT``; the clock is 2 s later."""
    for seq, (pod, depth) in enumerate([(POD_A, 3), (POD_B, 5), (OTHER, 1)], start=1):
        gauges = {"inference_queue_depth": depth, "inference_concurrency": depth + 2}
        response = await adapter.push(pod, seq, [0.01 * seq, 0.02 * seq, 0.5], gauges)
        assert response.status == 200
    adapter.clock.advance(2)  # type: ignore[attr-defined]
    return adapter


@pytest.fixture
async def client(adapter: RunningAdapter, pki: Pki) -> AsyncIterator[MetricsClient]:
    async with MetricsClient(adapter.url, pki.client_context()) as metrics:
        assert await metrics.discover() == "v1beta2"
        assert metrics.custom_version == "v1beta2"
        yield metrics


async def status_message(adapter: RunningAdapter, path: str) -> str:
    """The adapter's own ``Status`` message for ``path`` (asked directly)."""
    status, body, _ = await adapter.get(path)
    assert (status, body["kind"]) == (404, "Status")
    return body["message"]


async def test_pods_metric_gives_each_pods_value_timestamp_and_window(
    pushed: RunningAdapter, client: MetricsClient
) -> None:
    observed = await client.observe("ml", pods_metric("inference_queue_depth"), "app=model")
    assert isinstance(observed, rc.PodMetrics)
    # A gauge has no window: the client assumes the HPA's default.
    assert sorted(observed.samples, key=lambda s: s.pod) == [
        rc.PodMetricSample(POD_A.name, 3000, PUSHED_AT, rc.DEFAULT_METRIC_WINDOW_SECONDS),
        rc.PodMetricSample(POD_B.name, 5000, PUSHED_AT, rc.DEFAULT_METRIC_WINDOW_SECONDS),
    ]
    p99 = await client.observe("ml", pods_metric("inference_latency_p99_seconds"), "tier=gpu")
    assert isinstance(p99, rc.PodMetrics)
    (sample,) = p99.samples
    _, body, _ = await pushed.get(f"{CUSTOM}/pods/{POD_A.name}/inference_latency_p99_seconds")
    served = quantity.milli_value(quantity.parse_quantity(body["items"][0]["value"]))
    assert 400 < served <= 500
    # The adapter has been receiving for the 2 s since it started: the window it has seen.
    assert sample == rc.PodMetricSample(POD_A.name, served, PUSHED_AT, 2.0)


@pytest.mark.parametrize(
    ("pod_selector", "metric_selector", "pods"),
    [
        ("", None, {POD_A.name, POD_B.name, OTHER.name}),
        ("", ON_OTHER, {OTHER.name}),
        (
            "",
            {"matchExpressions": [{"key": "deployment", "operator": "NotIn", "values": ["other"]}]},
            {POD_A.name, POD_B.name},
        ),
        ("tier in (gpu,tpu)", None, {POD_A.name}),
        (
            "app=model",
            {"matchExpressions": [{"key": "deployment", "operator": "Exists"}]},
            {POD_A.name, POD_B.name},
        ),
    ],
)
async def test_pod_and_metric_selectors_pick_what_the_adapter_answers(
    pushed: RunningAdapter,
    client: MetricsClient,
    pod_selector: str,
    metric_selector: dict[str, Any] | None,
    pods: set[str],
) -> None:
    observed = await client.observe(
        "ml", pods_metric("inference_queue_depth", metric_selector), pod_selector
    )
    assert isinstance(observed, rc.PodMetrics)
    assert {s.pod for s in observed.samples} == pods


async def test_a_metric_selector_matching_no_series_is_the_adapters_404(
    pushed: RunningAdapter, client: MetricsClient
) -> None:
    observed = await client.observe(
        "ml", pods_metric("inference_queue_depth", ON_OTHER), "app=model"
    )
    query = urlencode({"labelSelector": "app=model", "metricLabelSelector": "deployment=other"})
    message = await status_message(pushed, f"{CUSTOM}/pods/*/inference_queue_depth?{query}")
    assert "deployment=other" in message
    assert observed == rc.FetchError(CUSTOM_FAILED + message)


@pytest.mark.parametrize(
    ("metric", "value_milli"),
    [
        (object_metric("inference_queue_depth"), 8000),  # 3 + 5, not OTHER's 1
        (object_metric("inference_concurrency"), 12000),
        (object_metric("inference_queue_depth", hpa.ObjectReference("Namespace", "x", "v1")), 9000),
        (
            object_metric(
                "inference_queue_depth", hpa.ObjectReference("Deployment", "other", "apps/v1")
            ),
            1000,
        ),
    ],
)
async def test_object_metric(
    pushed: RunningAdapter, client: MetricsClient, metric: hpa.MetricSpec, value_milli: int
) -> None:
    assert await client.observe("ml", metric, "app=model") == rc.ObjectMetricValue(
        value_milli, PUSHED_AT
    )


async def test_object_metric_selector_is_sent_as_metric_label_selector(
    pushed: RunningAdapter, client: MetricsClient
) -> None:
    on_model = {"matchLabels": {"deployment": "model"}}
    assert await client.observe(
        "ml", object_metric("inference_queue_depth", selector=on_model), ""
    ) == rc.ObjectMetricValue(8000, PUSHED_AT)
    observed = await client.observe(
        "ml", object_metric("inference_queue_depth", selector=ON_OTHER), ""
    )
    message = await status_message(
        pushed,
        f"{CUSTOM}/deployments.apps/model/inference_queue_depth"
        "?metricLabelSelector=deployment%3Dother",
    )
    assert observed == rc.FetchError(CUSTOM_FAILED + message)


@pytest.mark.parametrize(
    ("selector", "values"),
    [
        ({"matchLabels": {"deployment": "model"}}, (8000,)),
        (ON_OTHER, (1000,)),
        (
            {
                "matchExpressions": [
                    {"key": "deployment", "operator": "In", "values": ["model", "other"]}
                ]
            },
            (8000, 1000),
        ),
    ],
)
async def test_external_metric_with_a_selector(
    pushed: RunningAdapter,
    client: MetricsClient,
    selector: dict[str, Any],
    values: tuple[int, ...],
) -> None:
    observed = await client.observe("ml", external_metric("inference_queue_depth", selector), "")
    assert isinstance(observed, rc.ExternalMetricValues)
    assert sorted(observed.values_milli) == sorted(values)
    assert observed.timestamp == PUSHED_AT


@pytest.mark.parametrize(
    ("metric", "path", "prefix"),
    [
        (
            pods_metric("gpu_memory"),
            f"{CUSTOM}/pods/*/gpu_memory?labelSelector=app%3Dmodel",
            CUSTOM_FAILED,
        ),
        (object_metric("gpu_memory"), f"{CUSTOM}/deployments.apps/model/gpu_memory", CUSTOM_FAILED),
        (external_metric("gpu_memory"), f"{EXTERNAL}/gpu_memory", EXTERNAL_FAILED),
    ],
)
async def test_unknown_metric_is_the_adapters_status_message(
    pushed: RunningAdapter, client: MetricsClient, metric: hpa.MetricSpec, path: str, prefix: str
) -> None:
    message = await status_message(pushed, path)
    assert "gpu_memory" in message
    assert await client.observe("ml", metric, "app=model") == rc.FetchError(prefix + message)


@pytest.mark.parametrize(
    ("metric", "path", "prefix"),
    [
        (
            pods_metric("inference_queue_depth"),
            f"{CUSTOM}/pods/*/inference_queue_depth?labelSelector=app%3Dmodel",
            CUSTOM_FAILED,
        ),
        (
            object_metric("inference_queue_depth"),
            f"{CUSTOM}/deployments.apps/model/inference_queue_depth",
            CUSTOM_FAILED,
        ),
        (
            external_metric("inference_queue_depth", ON_OTHER),
            f"{EXTERNAL}/inference_queue_depth?labelSelector=deployment%3Dother",
            EXTERNAL_FAILED,
        ),
    ],
)
async def test_no_data_is_the_adapters_404_message(
    adapter: RunningAdapter, client: MetricsClient, metric: hpa.MetricSpec, path: str, prefix: str
) -> None:
    message = await status_message(adapter, path)
    assert "pushed within the max age" in message
    assert await client.observe("ml", metric, "app=model") == rc.FetchError(prefix + message)


async def test_stale_data_is_the_adapters_404_message(
    pushed: RunningAdapter, client: MetricsClient
) -> None:
    pushed.clock.advance(60)  # type: ignore[attr-defined]
    observed = await client.observe("ml", pods_metric("inference_queue_depth"), "app=model")
    assert isinstance(observed, rc.FetchError)
    assert observed.message.startswith(CUSTOM_FAILED)
    assert "0 pushed within the max age of 10s" in observed.message


async def test_a_closed_port_is_a_fetch_error_not_an_exception(pki: Pki) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    async with MetricsClient(url, pki.client_context()) as metrics:
        with pytest.raises(ApiFailure, match=rf'^Get "{url}/apis": '):
            await metrics.discover()
        assert metrics.custom_version is None
        for metric, prefix in [
            (external_metric("inference_queue_depth"), EXTERNAL_FAILED),
            (pods_metric("inference_queue_depth"), CUSTOM_FAILED),
            (object_metric("inference_queue_depth"), CUSTOM_FAILED),
        ]:
            observed = await metrics.observe("ml", metric, "app=model")
            assert isinstance(observed, rc.FetchError)
            assert observed.message.startswith(f'{prefix}Get "{url}/apis/')


async def test_a_client_without_a_certificate_gets_the_401_text(
    adapter: RunningAdapter, pki: Pki
) -> None:
    async with MetricsClient(adapter.url, pki.client_context(with_client_cert=False)) as metrics:
        with pytest.raises(ApiFailure) as raised:
            await metrics.discover()
        assert str(raised.value) == "Unauthorized"
        observed = await metrics.observe("ml", external_metric("inference_queue_depth"), "")
    assert observed == rc.FetchError(EXTERNAL_FAILED + "Unauthorized")


async def test_a_server_with_an_untrusted_certificate_is_a_fetch_error(
    adapter: RunningAdapter,
) -> None:
    async with MetricsClient(adapter.url, ssl.create_default_context()) as metrics:
        observed = await metrics.observe("ml", external_metric("inference_queue_depth"), "")
    assert isinstance(observed, rc.FetchError)
    assert "CERTIFICATE_VERIFY_FAILED" in observed.message


# -- against an aggregator-like server ---------------------------------------------------------


class Aggregator:
    """Answers each path with a canned response and records the requests it got."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.raw_path.split("?")[0], dict(request.query)))
        status, body = self.answers.get(request.path, (404, "404 page not found"))
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        return web.json_response(body, status=status)


def group_list(preferred: str, versions: list[str], name: str = "custom.metrics.k8s.io") -> Any:
    return {
        "kind": "APIGroupList",
        "groups": [
            {"name": "apps", "preferredVersion": {"version": "v1"}, "versions": []},
            {
                "name": name,
                "preferredVersion": {"version": preferred},
                "versions": [{"version": v} for v in versions],
            },
        ],
    }


@pytest.fixture
async def aggregator(pki: Pki) -> AsyncIterator[tuple[Aggregator, str]]:
    fake = Aggregator()
    app = web.Application()
    app.router.add_get("/{tail:.*}", fake.handle)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.serving_cert, pki.serving_key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield fake, f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def connected(url: str, pki: Pki) -> AsyncIterator[MetricsClient]:
    async with MetricsClient(url, pki.client_context()) as metrics:
        yield metrics


@pytest.mark.parametrize(
    ("groups", "version"),
    [
        (group_list("v1beta2", ["v1beta2", "v1beta1"]), "v1beta2"),
        (group_list("v1beta1", ["v1beta2", "v1beta1"]), "v1beta1"),
        (group_list("v1", ["v1", "v1beta1"]), "v1beta1"),  # unknown preferred: first known
        (group_list("v2", ["v2", "v1beta2", "v1beta1"]), "v1beta2"),
        (group_list("v1beta1", ["v1beta1"], name="external.metrics.k8s.io"), None),
        (group_list("v1", ["v1"]), None),
        ({"kind": "APIGroupList", "groups": []}, None),
    ],
)
async def test_discovery_picks_the_preferred_known_version(
    aggregator: tuple[Aggregator, str], pki: Pki, groups: Any, version: str | None
) -> None:
    fake, url = aggregator
    fake.answers["/apis"] = (200, groups)
    async with connected(url, pki) as metrics:
        if version is None:
            with pytest.raises(
                ApiFailure, match=r"^no custom metrics API \(custom\.metrics\.k8s\.io\) registered$"
            ):
                await metrics.discover()
        else:
            assert await metrics.discover() == version


async def test_requests_are_the_ones_the_hpa_sends(
    aggregator: tuple[Aggregator, str], pki: Pki
) -> None:
    """Reference section 11: the four requests of the example HPA, plus selectors."""
    fake, url = aggregator
    fake.answers["/apis"] = (200, group_list("v1beta1", ["v1beta2", "v1beta1"]))
    service = hpa.ObjectReference("Service", "llm-gateway", "v1")
    tier = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu", "cpu"]}]}
    async with connected(url, pki) as metrics:
        await metrics.discover()
        for metric in [
            pods_metric("inference_queue_depth"),
            object_metric("inference_latency_p99_seconds", service),
            object_metric("inference_queue_depth"),
            external_metric("inference_queue_depth", {"matchLabels": {"model": "llama-3-8b"}}),
            pods_metric("inference_queue_depth", tier),
            object_metric("q", hpa.ObjectReference("Namespace", "elsewhere", "v1"), tier),
            object_metric(
                "q",
                hpa.ObjectReference(
                    "InferencePool", "pool a", "inference.networking.x-k8s.io/v1alpha2"
                ),
            ),
        ]:
            observed = await metrics.observe("inference", metric, "app=llm-server")
            assert isinstance(observed, rc.FetchError)
            assert observed.message.startswith("unable to fetch metrics from ")
            assert observed.message.endswith(
                "the server could not find the requested resource"
                f" (get {expected_resource(metric)})"
            )
    custom = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/inference"
    assert fake.requests[1:] == [
        (f"{custom}/pods/*/inference_queue_depth", {"labelSelector": "app=llm-server"}),
        (f"{custom}/services/llm-gateway/inference_latency_p99_seconds", {}),
        (f"{custom}/deployments.apps/model/inference_queue_depth", {}),
        (
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/inference/inference_queue_depth",
            {"labelSelector": "model=llama-3-8b"},
        ),
        (
            f"{custom}/pods/*/inference_queue_depth",
            {"labelSelector": "app=llm-server", "metricLabelSelector": "tier in (cpu,gpu)"},
        ),
        (f"{custom}/metrics/q", {"metricLabelSelector": "tier in (cpu,gpu)"}),
        (f"{custom}/inferencepools.inference.networking.x-k8s.io/{quote('pool a')}/q", {}),
    ]


def expected_resource(metric: hpa.MetricSpec) -> str:
    """What client-go appends to a generic error: ``(get <resource>.<group> <name>)``."""
    if metric.type == hpa.PODS:
        return "pods.custom.metrics.k8s.io *"
    if metric.type == hpa.EXTERNAL:
        return f"{metric.metric_name}.external.metrics.k8s.io"
    assert metric.described_object is not None
    if metric.described_object.kind == "Namespace":
        return f"namespaces.custom.metrics.k8s.io {metric.metric_name}"
    resource = resource_for(metric.described_object)
    return f"{resource}.custom.metrics.k8s.io {metric.described_object.name}"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (503, "service unavailable", "the server is currently unable to handle the request"),
        (401, "Unauthorized", "the server has asked for the client to provide credentials"),
        (403, "nope", "forbidden"),
        (404, "404 page not found", "the server could not find the requested resource"),
        (500, "boom", "an error on the server (b'boom') has prevented the request from succeeding"),
        # A Status is used only when it is one; other JSON gets the generic text too.
        (
            503,
            {"kind": "Other", "message": "x"},
            "the server is currently unable to handle the request",
        ),
        (
            500,
            {
                "kind": "Status",
                "status": "Failure",
                "message": "Internal error occurred: unable to fetch metrics",
                "code": 500,
            },
            "Internal error occurred: unable to fetch metrics",
        ),
    ],
)
async def test_error_answers_are_worded_as_client_go_words_them(
    aggregator: tuple[Aggregator, str], pki: Pki, status: int, body: Any, message: str
) -> None:
    fake, url = aggregator
    fake.answers["/apis"] = (200, group_list("v1beta2", ["v1beta2"]))
    fake.answers["/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/q"] = (status, body)
    async with connected(url, pki) as metrics:
        await metrics.discover()
        observed = await metrics.observe("ml", pods_metric("q"), "app=model")
    suffix = (
        ""
        if isinstance(body, dict) and body["kind"] == "Status"
        else " (get pods.custom.metrics.k8s.io *)"
    )
    assert observed == rc.FetchError(CUSTOM_FAILED + message + suffix)


@pytest.mark.parametrize(
    ("metric", "path", "items", "message"),
    [
        (pods_metric("q"), "/pods/*/q", [], "no metrics returned from custom metrics API"),
        (external_metric("q"), "/q", [], "no metrics returned from external metrics API"),
        (
            object_metric("q"),
            "/deployments.apps/model/q",
            [],
            CUSTOM_FAILED
            + "the custom metrics API server returned 0 results when we asked for exactly one",
        ),
        (
            object_metric("q"),
            "/deployments.apps/model/q",
            [{"value": "1"}, {"value": "2"}],
            CUSTOM_FAILED
            + "the custom metrics API server returned 2 results when we asked for exactly one",
        ),
    ],
)
async def test_answers_with_the_wrong_number_of_items(
    aggregator: tuple[Aggregator, str],
    pki: Pki,
    metric: hpa.MetricSpec,
    path: str,
    items: list[Any],
    message: str,
) -> None:
    fake, url = aggregator
    fake.answers["/apis"] = (200, group_list("v1beta2", ["v1beta2"]))
    base = EXTERNAL if metric.type == hpa.EXTERNAL else CUSTOM
    fake.answers[f"{base}{path}"] = (200, {"kind": "MetricValueList", "items": items})
    async with connected(url, pki) as metrics:
        await metrics.discover()
        assert await metrics.observe("ml", metric, "") == rc.FetchError(message)


async def test_v1beta1_items_carry_their_window_as_window(
    aggregator: tuple[Aggregator, str], pki: Pki
) -> None:
    fake, url = aggregator
    fake.answers["/apis"] = (200, group_list("v1beta1", ["v1beta1"]))
    item = {
        "describedObject": {"kind": "Pod", "name": "p-1"},
        "metricName": "q",
        "timestamp": "2027-01-15T08:00:00Z",
        "window": 15,
        "value": "1500m",
    }
    fake.answers["/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/pods/*/q"] = (
        200,
        {"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta1", "items": [item]},
    )
    async with connected(url, pki) as metrics:
        assert await metrics.discover() == "v1beta1"
        observed = await metrics.observe("ml", pods_metric("q"), "")
    assert observed == rc.PodMetrics((rc.PodMetricSample("p-1", 1500, PUSHED_AT, 15.0),))
