"""``PrometheusProvider`` in process against the fleet's real Prometheus, after the traffic.

With a window that holds every request of the steady load and no request since, the pooled
latency barely changes between scrapes (only ``rate``'s extrapolation, per series, moves it, by
about 1e-4 a second), so answers computed different ways must agree: Prometheus' own
``histogram_quantile``, the standalone provider (one query by the ``deployment`` label) and the
cluster-mode provider whose selection is split into one query per pod and pooled in the
adapter. At one evaluation time, the adapter's arithmetic equals Prometheus' exactly.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Sequence

import pytest

from adapter import errors, kube, resources, selectors
from adapter.prometheus import PrometheusClient, PrometheusProvider, Queries, SeriesLabels
from adapter.prometheus.histogram import bucket_quantile
from adapter.provider import CustomMetricInfo, MetricsProvider, MetricValue
from tests.prometheus.conftest import LAG_SECONDS, LAGGING, LAGGING_PODS, NAMESPACE, PODS, Fleet

pytestmark = pytest.mark.integration

WHOLE_RUN_SECONDS = 300.0
TOLERANCE = 2e-3
"""Between two queries a second apart the pooled p99 moves by about 1e-4: ``rate()``
extrapolates each bucket series by its own first value, and the window's samples grow."""
P99 = "inference_latency_p99_seconds"


def cluster_view() -> kube.ClusterView:
    """The fleet as the informers would list it (real object JSON through the real view)."""
    view = kube.ClusterView()

    def meta(name: str, **extra: object) -> dict[str, object]:
        return {"namespace": NAMESPACE, "name": name, **extra}

    pods = [
        {
            "metadata": meta(
                name,
                uid=f"uid-{name}",
                labels={"app": deployment},
                ownerReferences=[
                    {"kind": "ReplicaSet", "name": f"{deployment}-rs", "controller": True}
                ],
            )
        }
        for name, (deployment, _) in PODS.items()
    ]
    replica_sets = [
        {
            "metadata": meta(
                f"{d}-rs", ownerReferences=[{"kind": "Deployment", "name": d, "controller": True}]
            )
        }
        for d in ("model", "slow")
    ]
    deployments = [
        {"metadata": meta(d), "spec": {"selector": {"matchLabels": {"app": d}}}}
        for d in ("model", "slow")
    ]
    services = [{"metadata": meta("model-svc"), "spec": {"selector": {"app": "model"}}}]
    for kind, objects in (
        (kube.PODS, pods),
        (kube.REPLICA_SETS, replica_sets),
        (kube.DEPLOYMENTS, deployments),
        (kube.SERVICES, services),
    ):
        view.deliver(kind)(kube.SYNC, objects)
    return view


@pytest.fixture
async def providers(
    fleet: Fleet, traffic_done: None
) -> AsyncIterator[tuple[MetricsProvider, MetricsProvider]]:
    """A standalone provider and a cluster-mode one that asks one pod per query."""
    queries = Queries(SeriesLabels(), WHOLE_RUN_SECONDS, 15.0, max_age_seconds=30.0)
    async with PrometheusClient(fleet.prometheus.url, 5.0) as client:
        yield (
            PrometheusProvider(client, queries),
            PrometheusProvider(client, queries, view=cluster_view(), names_per_query=1),
        )


def prometheus_p99() -> str:
    return (
        "histogram_quantile(0.99, sum by (le) (rate(inference_request_duration_seconds_bucket"
        f'{{deployment="model"}}[{WHOLE_RUN_SECONDS:g}s])))'
    )


def instant(fleet: Fleet, promql: str, at: float | None = None) -> list[dict]:
    query = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
    url = f"{fleet.prometheus.url}/api/v1/query?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return list(json.loads(answer.read())["data"]["result"])


async def test_split_selection_pools_as_prometheus_does(
    fleet: Fleet, providers: tuple[MetricsProvider, MetricsProvider]
) -> None:
    standalone, in_cluster = providers
    deployments = CustomMetricInfo(resources.DEPLOYMENTS.group_resource, True, P99)
    everything = selectors.EVERYTHING
    by_label = await standalone.get_metric_by_name(deployments, NAMESPACE, "model", everything)
    split = await in_cluster.get_metric_by_name(deployments, NAMESPACE, "model", everything)
    services = CustomMetricInfo(resources.SERVICES.group_resource, True, P99)
    service = await in_cluster.get_metric_by_name(services, NAMESPACE, "model-svc", everything)
    (computed,) = instant(fleet, prometheus_p99())
    expected = float(computed["value"][1])
    assert by_label.value == pytest.approx(expected, rel=TOLERANCE)
    assert split.value == pytest.approx(expected, rel=TOLERANCE)
    assert service.value == pytest.approx(expected, rel=TOLERANCE)

    # Pooled, not averaged: between the pods' own p99s, which the cluster view selects.
    pods = CustomMetricInfo(resources.PODS.group_resource, True, P99)
    app_model = selectors.parse("app=model")
    per_pod = await in_cluster.get_metric_by_selector(pods, NAMESPACE, app_model, everything)
    assert {v.described_object.name for v in per_pod} == {"p0", "p1"}
    same = await standalone.get_metric_by_selector(pods, NAMESPACE, app_model, everything)
    assert [v.value for v in per_pod] == pytest.approx([v.value for v in same], rel=TOLERANCE)
    assert min(v.value for v in per_pod) < split.value < max(v.value for v in per_pod)


def test_bucket_quantile_is_prometheus_arithmetic(fleet: Fleet, traffic_done: None) -> None:
    """The adapter's pooling reads quantiles exactly as ``histogram_quantile`` does, on the
    same buckets at the same evaluation time."""
    window = f"[{WHOLE_RUN_SECONDS:g}s]"
    buckets = f"sum by (le) (rate(inference_request_duration_seconds_bucket{window}))"
    samples = instant(fleet, buckets)
    at = samples[0]["value"][0]
    pooled = {float(s["metric"]["le"]): float(s["value"][1]) for s in samples}
    for q in (0.5, 0.9, 0.99, 0.999):
        (answer,) = instant(fleet, f"histogram_quantile({q}, {buckets})", at)
        assert bucket_quantile(q, pooled) == pytest.approx(float(answer["value"][1]), rel=1e-12)
    assert not math.isnan(bucket_quantile(0.99, pooled))


async def test_every_object_kind_agrees_between_modes(
    providers: tuple[MetricsProvider, MetricsProvider],
) -> None:
    """Deployments by selector, namespaces and external series: the series labels (standalone)
    and the informers' objects (cluster mode, split per pod) give the same pooled values."""
    standalone, in_cluster = providers
    everything = selectors.EVERYTHING

    def by_name(values: Sequence[MetricValue]) -> dict[str, float]:
        return {v.described_object.name: v.value for v in values}

    deployments = CustomMetricInfo(resources.DEPLOYMENTS.group_resource, True, P99)
    labelled = by_name(
        await standalone.get_metric_by_selector(deployments, NAMESPACE, everything, everything)
    )
    informed = by_name(
        await in_cluster.get_metric_by_selector(deployments, NAMESPACE, everything, everything)
    )
    assert set(labelled) == set(informed) == {"model", "slow"}
    assert informed["model"] == pytest.approx(labelled["model"], rel=TOLERANCE)

    namespaces = CustomMetricInfo(resources.NAMESPACES.group_resource, False, P99)
    whole = await standalone.get_metric_by_name(namespaces, None, NAMESPACE, everything)
    split = await in_cluster.get_metric_by_name(namespaces, None, NAMESPACE, everything)
    assert split.value == pytest.approx(whole.value, rel=TOLERANCE)
    listed = await standalone.get_metric_by_selector(namespaces, None, everything, everything)
    assert by_name(listed) == pytest.approx({NAMESPACE: whole.value}, rel=TOLERANCE)

    rate = "inference_requests_per_second"
    labelled_series = await standalone.get_external_metric(NAMESPACE, rate, everything)
    informed_series = await in_cluster.get_external_metric(NAMESPACE, rate, everything)
    assert (
        [s.labels for s in labelled_series]
        == [s.labels for s in informed_series]
        == [
            {"deployment": "model"},
            {"deployment": "slow"},
        ]
    )
    only_model = selectors.parse("deployment=model")
    (model,) = await in_cluster.get_external_metric(NAMESPACE, rate, only_model)
    assert model.value == pytest.approx(labelled_series[0].value, rel=0.05)


async def test_not_found_and_bad_selectors(
    providers: tuple[MetricsProvider, MetricsProvider],
) -> None:
    standalone, in_cluster = providers
    pods = CustomMetricInfo(resources.PODS.group_resource, True, P99)
    with pytest.raises(errors.ApiError, match="does not exist in the cluster"):
        await in_cluster.get_metric_by_name(pods, NAMESPACE, "gone", selectors.EVERYTHING)
    with pytest.raises(errors.ApiError, match="gone has no inference_request_duration"):
        await standalone.get_metric_by_name(pods, NAMESPACE, "gone", selectors.EVERYTHING)
    with pytest.raises(errors.ApiError, match="cannot be expressed") as caught:
        await standalone.get_metric_by_selector(
            pods, NAMESPACE, selectors.parse("gpu>2"), selectors.EVERYTHING
        )
    assert caught.value.code == 400


async def test_a_window_shorter_than_two_scrapes_is_no_value_not_zero(
    fleet: Fleet, traffic_done: None
) -> None:
    """``rate()`` needs two samples in its window: with a window shorter than the 1 s scrape
    interval there is no rate and no quantile, and the adapter says so with a 404 rather than
    serving the zero it would serve for a pod without requests (the HPA would scale on it)."""
    queries = Queries(SeriesLabels(), 0.5, 15.0, max_age_seconds=30.0)
    pods = CustomMetricInfo(resources.PODS.group_resource, True, "inference_requests_per_second")
    deployments = CustomMetricInfo(resources.DEPLOYMENTS.group_resource, True, P99)
    everything = selectors.EVERYTHING
    async with PrometheusClient(fleet.prometheus.url, 5.0) as client:
        provider = PrometheusProvider(client, queries)
        with pytest.raises(errors.ApiError) as per_pod:
            await provider.get_metric_by_selector(pods, NAMESPACE, everything, everything)
        with pytest.raises(errors.ApiError) as pooled:
            await provider.get_metric_by_name(deployments, NAMESPACE, "model", everything)
        depth = CustomMetricInfo(resources.PODS.group_resource, True, "inference_queue_depth")
        gauges = await provider.get_metric_by_selector(depth, NAMESPACE, everything, everything)
    assert {v.described_object.name for v in gauges} == set(PODS)  # the pods are there
    assert per_pod.value.code == pooled.value.code == 404
    for caught in (per_pod, pooled):
        assert "two samples" in caught.value.message
        assert "within the window of 0.5s" in caught.value.message, caught.value.message


async def test_a_pod_sampled_longer_ago_than_the_max_age_is_left_out(fleet: Fleet) -> None:
    """``lag-0``'s newest sample is ``LAG_SECONDS`` old (conftest's ``LaggingExporter``): past
    a shorter max age it is out of every answer, an object's sum included, and its own 404
    reads as the push path's; with a longer max age the same queries count it (a gauge window
    that reaches its samples)."""
    depth = "inference_queue_depth"
    pods = CustomMetricInfo(resources.PODS.group_resource, True, depth)
    deployments = CustomMetricInfo(resources.DEPLOYMENTS.group_resource, True, depth)
    everything = selectors.EVERYTHING

    def provider(max_age_seconds: float) -> PrometheusProvider:
        queries = Queries(SeriesLabels(), 10.0, LAG_SECONDS + 20, max_age_seconds)
        return PrometheusProvider(client, queries)

    in_namespace = f'{{namespace="{LAGGING}"}}'
    fleet.prometheus.wait_for(f"count(inference_queue_depth{in_namespace}) == 2", bool)
    async with PrometheusClient(fleet.prometheus.url, 5.0) as client:
        strict, lenient = provider(LAG_SECONDS - 10), provider(LAG_SECONDS + 30)
        for each, expected in ((strict, {"lag-1"}), (lenient, set(LAGGING_PODS))):
            listed = await each.get_metric_by_selector(pods, LAGGING, everything, everything)
            assert {v.described_object.name for v in listed} == expected
        summed = await strict.get_metric_by_name(deployments, LAGGING, LAGGING, everything)
        both = await lenient.get_metric_by_name(deployments, LAGGING, LAGGING, everything)
        with pytest.raises(errors.ApiError) as lagging:
            await strict.get_metric_by_name(pods, LAGGING, "lag-0", everything)
        with pytest.raises(errors.ApiError) as gone:
            await strict.get_metric_by_name(pods, LAGGING, "gone", everything)
    assert summed.value == LAGGING_PODS["lag-1"]
    assert both.value == LAGGING_PODS["lag-1"] + LAGGING_PODS["lag-0"]
    assert lagging.value.code == gone.value.code == 404
    message = lagging.value.message
    assert message.startswith(f"pod {LAGGING}/lag-0 was last sampled "), message
    assert message.endswith(f"s ago, more than the max age of {LAG_SECONDS - 10:g}s"), message
    age = float(message.split("last sampled ")[1].split("s ago")[0])
    assert LAG_SECONDS <= age < LAG_SECONDS + 10
    assert gone.value.message == f"pod {LAGGING}/gone has no {depth} series in Prometheus"
