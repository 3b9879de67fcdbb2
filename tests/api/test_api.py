"""The HTTP surface over real TLS: discovery, every URL form in both versions, errors, pushes."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from kubernetes.utils import parse_quantity

from adapter.client import PodIdentity
from adapter.resources import PodRef
from tests.api.conftest import TOKEN, RunningAdapter

CUSTOM = "/apis/custom.metrics.k8s.io"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
POD_A = PodIdentity("ml", "model-7d4b9c-aaaaa", "uid-a", {"app": "model", "tier": "gpu"}, "model")
POD_B = PodIdentity("ml", "model-7d4b9c-bbbbb", "uid-b", {"app": "model", "tier": "cpu"}, "model")
OTHER = PodIdentity("ml", "other-5f5f5f-ccccc", "uid-c", {"app": "other"}, "other")
POD_A_REF = PodRef("ml", POD_A.name)


def latencies(seed: int, median: float, count: int = 2000) -> list[float]:
    return np.random.default_rng(seed).lognormal(np.log(median), 0.4, count).tolist()


@pytest.fixture
async def populated(adapter_server: RunningAdapter) -> RunningAdapter:
    """Three pods of two deployments, each with one report, to an adapter that has been
    receiving for a whole window."""
    adapter_server.clock.advance(30)  # type: ignore[attr-defined]
    for seq, (pod, median, depth) in enumerate(
        [(POD_A, 0.020, 3), (POD_B, 0.200, 5), (OTHER, 0.050, 1)], start=1
    ):
        response = await adapter_server.push(
            pod,
            seq,
            latencies(seq, median),
            {"inference_queue_depth": depth, "inference_concurrency": depth + 2},
        )
        assert response.status == 200
    return adapter_server


# -- discovery ---------------------------------------------------------------------------------


async def test_api_group_list_prefers_v1beta2_even_when_asked_for_aggregated_discovery(
    adapter_server: RunningAdapter,
) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    async with adapter_server.reader.get(
        f"{adapter_server.url}/apis", headers={"Accept": accept}
    ) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert body["kind"] == "APIGroupList"
    groups = {g["name"]: g for g in body["groups"]}
    assert groups["custom.metrics.k8s.io"]["preferredVersion"]["version"] == "v1beta2"
    assert [v["version"] for v in groups["custom.metrics.k8s.io"]["versions"]] == [
        "v1beta2",
        "v1beta1",
    ]
    assert groups["external.metrics.k8s.io"]["preferredVersion"]["version"] == "v1beta1"


@pytest.mark.parametrize(
    ("group", "versions"),
    [("custom.metrics.k8s.io", ["v1beta2", "v1beta1"]), ("external.metrics.k8s.io", ["v1beta1"])],
)
async def test_api_group(adapter_server: RunningAdapter, group: str, versions: list[str]) -> None:
    status, body, _ = await adapter_server.get(f"/apis/{group}")
    assert status == 200
    assert body["kind"] == "APIGroup"
    assert body["name"] == group
    assert [v["version"] for v in body["versions"]] == versions


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
async def test_custom_resource_list_is_never_empty_and_scope_consistent(
    adapter_server: RunningAdapter, version: str
) -> None:
    status, body, content_type = await adapter_server.get(f"{CUSTOM}/{version}")
    assert (status, content_type) == (200, "application/json")
    assert body["groupVersion"] == f"custom.metrics.k8s.io/{version}"
    resources = body["resources"]
    assert resources
    scopes: dict[str, set[bool]] = {}
    for entry in resources:
        assert entry["kind"] == "MetricValueList"
        assert entry["verbs"] == ["get"]
        assert entry["singularName"] == ""
        parent = entry["name"].split("/")[0]
        scopes.setdefault(parent, set()).add(entry["namespaced"])
    assert scopes == {"pods": {True}, "deployments.apps": {True}, "namespaces": {False}}
    names = {entry["name"] for entry in resources}
    assert "pods/inference_latency_p99_seconds" in names
    assert "deployments.apps/inference_queue_depth" in names


async def test_external_resource_list(adapter_server: RunningAdapter) -> None:
    status, body, _ = await adapter_server.get(EXTERNAL)
    assert status == 200
    assert {r["kind"] for r in body["resources"]} == {"ExternalMetricValueList"}
    assert all(r["namespaced"] for r in body["resources"])
    assert "inference_queue_depth" in {r["name"] for r in body["resources"]}


@pytest.mark.parametrize(
    "path",
    ["/apis/custom.metrics.k8s.io/v1", "/apis/external.metrics.k8s.io/v1beta2", "/apis/nope"],
)
async def test_unknown_group_versions_are_404_status(
    adapter_server: RunningAdapter, path: str
) -> None:
    status, body, _ = await adapter_server.get(path)
    assert status == 404
    assert (body["kind"], body["status"], body["reason"]) == ("Status", "Failure", "NotFound")


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
async def test_health_needs_no_credentials(adapter_server: RunningAdapter, path: str) -> None:
    adapter_server.clock.advance(2)  # type: ignore[attr-defined]  # past the warm-up
    async with adapter_server.anonymous.get(f"{adapter_server.url}{path}") as response:
        assert response.status == 200
        assert await response.text() == "ok"


async def test_ready_only_after_the_warm_up_but_live_at_once(
    adapter_server: RunningAdapter,
) -> None:
    """A replica that starts holds no pod yet: not ready until every live pod could push to it
    (the default warm-up, two push intervals), while liveness answers at once."""

    async def status(path: str) -> tuple[int, str]:
        async with adapter_server.anonymous.get(f"{adapter_server.url}{path}") as response:
            return response.status, await response.text()

    assert adapter_server.state.config.warm_up_seconds == 2
    code, text = await status("/readyz")
    assert code == 503
    assert "warming up: 2.0s of the 2s warm-up left" in text
    assert await status("/livez") == (200, "ok")
    adapter_server.clock.advance(1.5)  # type: ignore[attr-defined]
    assert (await status("/readyz"))[0] == 503
    adapter_server.clock.advance(0.5)  # type: ignore[attr-defined]
    assert await status("/readyz") == (200, "ok")


@pytest.mark.parametrize(
    ("version", "field"), [("v1beta2", "windowSeconds"), ("v1beta1", "window")]
)
async def test_a_replica_younger_than_the_window_reports_the_window_it_has_seen(
    adapter_server: RunningAdapter, version: str, field: str
) -> None:
    """Windowed values carry the seconds the replica has actually been receiving, not the
    configured window, until it has run for a whole window; gauges carry no window."""
    clock = adapter_server.clock

    async def windows() -> tuple[int, int, bool, bool]:
        base = f"{CUSTOM}/{version}/namespaces/ml"
        _, pod, _ = await adapter_server.get(
            f"{base}/pods/{POD_A.name}/inference_latency_p99_seconds"
        )
        _, deployment, _ = await adapter_server.get(
            f"{base}/deployments.apps/model/inference_requests_per_second"
        )
        _, external, _ = await adapter_server.get(
            f"{EXTERNAL}/namespaces/ml/inference_latency_p50_seconds"
        )
        _, gauge, _ = await adapter_server.get(f"{base}/pods/{POD_A.name}/inference_queue_depth")
        (pod_item,), (deployment_item,) = pod["items"], deployment["items"]
        (external_item,), (gauge_item,) = external["items"], gauge["items"]
        assert pod_item[field] == deployment_item[field]
        return pod_item[field], external_item["window"], field in gauge_item, "window" in gauge_item

    started = adapter_server.state.store.receiving_since
    assert started is not None
    steps = ((0.4, 1), (12.7, 12), (29.9, 29), (30, 30), (95, 30))
    for seq, (elapsed, expected) in enumerate(steps, start=1):
        clock.now = started + elapsed  # type: ignore[attr-defined]
        depth = {"inference_queue_depth": 1.0}
        assert (await adapter_server.push(POD_A, seq, [0.02], depth)).status == 200
        assert await windows() == (expected, expected, False, False), elapsed


@pytest.mark.parametrize(
    "path", ["/apis", f"{CUSTOM}/v1beta2", f"{EXTERNAL}/namespaces/ml/x", "/metrics", "/openapi/v2"]
)
async def test_everything_else_needs_a_client_certificate(
    adapter_server: RunningAdapter, path: str
) -> None:
    async with adapter_server.anonymous.get(
        f"{adapter_server.url}{path}", headers={"X-Remote-User": "system:admin"}
    ) as response:
        assert response.status == 401
        assert response.content_type == "application/json"
        body = await response.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)


# -- custom metrics: every URL form in both versions --------------------------------------------


@pytest.mark.parametrize("star", ["*", "%2A"])
async def test_pods_by_selector_v1beta2_shape(populated: RunningAdapter, star: str) -> None:
    status, body, content_type = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/{star}/inference_queue_depth?labelSelector=app%3Dmodel"
    )
    assert (status, content_type) == (200, "application/json")
    assert (body["kind"], body["apiVersion"]) == (
        "MetricValueList",
        "custom.metrics.k8s.io/v1beta2",
    )
    assert body["metadata"] == {}
    items = {item["describedObject"]["name"]: item for item in body["items"]}
    assert set(items) == {POD_A.name, POD_B.name}
    item = items[POD_A.name]
    assert item["describedObject"] == {
        "kind": "Pod",
        "namespace": "ml",
        "name": POD_A.name,
        "apiVersion": "v1",
    }
    assert item["metric"] == {"name": "inference_queue_depth", "selector": None}
    assert item["value"] == "3"
    assert "windowSeconds" not in item  # a gauge is an instant, not a window
    assert "metricName" not in item
    assert item["timestamp"].endswith("Z")
    assert len(item["timestamp"]) == len("2026-11-28T15:00:00Z")


async def test_pods_by_selector_v1beta1_shape(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta1/namespaces/ml/pods/*/inference_latency_p99_seconds?labelSelector=app%3Dmodel"
    )
    assert status == 200
    assert body["apiVersion"] == "custom.metrics.k8s.io/v1beta1"
    for item in body["items"]:
        assert set(item) == {
            "describedObject",
            "metricName",
            "timestamp",
            "window",
            "value",
            "selector",
        }
        assert item["metricName"] == "inference_latency_p99_seconds"
        assert item["window"] == 30
        assert item["selector"] is None


async def test_per_pod_p99_matches_numpy_on_the_raw_samples(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/{POD_B.name}/inference_latency_p99_seconds"
    )
    assert status == 200
    assert len(body["items"]) == 1
    served = float(parse_quantity(body["items"][0]["value"]))
    exact = float(np.quantile(latencies(2, 0.200), 0.99))
    assert served == pytest.approx(exact, rel=0.01)
    assert body["items"][0]["windowSeconds"] == 30


async def test_deployment_p99_is_the_pooled_quantile(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/deployments.apps/model/inference_latency_p99_seconds"
    )
    assert status == 200
    (item,) = body["items"]
    assert item["describedObject"] == {
        "kind": "Deployment",
        "namespace": "ml",
        "name": "model",
        "apiVersion": "apps/v1",
    }
    pooled = float(np.quantile(latencies(1, 0.020) + latencies(2, 0.200), 0.99))
    assert float(parse_quantity(item["value"])) == pytest.approx(pooled, rel=0.01)


@pytest.mark.parametrize("spelling", ["deployments.apps", "deployments", "deployment", "deploy"])
async def test_deployment_spellings_and_gauge_sum(populated: RunningAdapter, spelling: str) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta1/namespaces/ml/{spelling}/model/inference_queue_depth"
    )
    assert status == 200
    (item,) = body["items"]
    assert item["value"] == "8"
    assert item["describedObject"]["kind"] == "Deployment"


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
async def test_namespace_form_and_root_namespace_form(
    populated: RunningAdapter, version: str
) -> None:
    for path in (
        f"{CUSTOM}/{version}/namespaces/ml/metrics/inference_concurrency",
        f"{CUSTOM}/{version}/namespaces/ml/inference_concurrency",
    ):
        status, body, _ = await populated.get(path)
        assert status == 200, body
        (item,) = body["items"]
        assert item["describedObject"] == {"kind": "Namespace", "name": "ml", "apiVersion": "v1"}
        assert item["value"] == str(5 + 7 + 3)


async def test_set_based_selector_with_plus_encoded_spaces(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth"
        "?labelSelector=tier+in+(gpu,tpu),app%3Dmodel"
    )
    assert status == 200
    assert [i["describedObject"]["name"] for i in body["items"]] == [POD_A.name]


async def test_empty_selector_selects_every_pod(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth?labelSelector="
    )
    assert status == 200
    assert len(body["items"]) == 3


async def test_metric_label_selector_picks_series_and_is_echoed(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth"
        "?metricLabelSelector=deployment%3Dother"
    )
    assert status == 200
    assert [i["describedObject"]["name"] for i in body["items"]] == [OTHER.name]
    assert body["items"][0]["metric"]["selector"] == {"matchLabels": {"deployment": "other"}}


async def test_deployments_by_selector(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/deployments.apps/*/inference_queue_depth"
    )
    assert status == 200
    values = {i["describedObject"]["name"]: i["value"] for i in body["items"]}
    assert values == {"model": "8", "other": "1"}


# -- external metrics --------------------------------------------------------------------------


async def test_external_series_per_deployment(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(
        f"{EXTERNAL}/namespaces/ml/inference_queue_depth?labelSelector=deployment%3Dmodel"
    )
    assert status == 200
    assert (body["kind"], body["apiVersion"]) == (
        "ExternalMetricValueList",
        "external.metrics.k8s.io/v1beta1",
    )
    (item,) = body["items"]
    assert item["metricName"] == "inference_queue_depth"
    assert item["metricLabels"] == {"deployment": "model"}
    assert item["value"] == "8"
    status, body, _ = await populated.get(f"{EXTERNAL}/namespaces/ml/inference_queue_depth")
    assert sorted(i["metricLabels"]["deployment"] for i in body["items"]) == ["model", "other"]


# -- errors ------------------------------------------------------------------------------------


async def test_unknown_metric_lists_the_metrics_that_exist(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/gpu_memory")
    assert status == 404
    assert body["reason"] == "NotFound"
    assert "gpu_memory" in body["message"]
    assert "inference_latency_p99_seconds" in body["message"]


async def test_selector_matching_nothing_fresh_says_why(populated: RunningAdapter) -> None:
    populated.clock.advance(11)
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth?labelSelector=app%3Dmodel"
    )
    assert status == 404
    assert "matched 2 of 3 pods" in body["message"]
    assert "0 pushed within the max age of 10s" in body["message"]


async def test_stale_pod_by_name_says_how_stale(populated: RunningAdapter) -> None:
    populated.clock.advance(12.5)
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/{POD_A.name}/inference_queue_depth"
    )
    assert status == 404
    assert "last pushed 12.5s ago" in body["message"]


async def test_services_need_the_cluster_view(populated: RunningAdapter) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/services/model/inference_queue_depth"
    )
    assert status == 404
    assert "cluster view" in body["message"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("labelSelector=a%20in%20(", "labelSelector"), ("metricLabelSelector=x%3D%3D%3D", "metric")],
)
async def test_invalid_selectors_are_400(
    populated: RunningAdapter, query: str, parameter: str
) -> None:
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth?{query}"
    )
    assert status == 400
    assert body["reason"] == "BadRequest"
    assert parameter in body["message"]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"{CUSTOM}/v1beta2/namespaces/ml/pods/model", 404),
        (f"{CUSTOM}/v1beta2/namespaces/ml/pods/a/b/c/d", 404),
        (f"{CUSTOM}/v1beta2/namespaces/ml//x/y", 404),
        (f"{CUSTOM}/v1beta2/namespaces/Not_A_Namespace/pods/*/inference_queue_depth", 400),
        (f"{CUSTOM}/v1beta2/pods/model-1/inference_queue_depth", 400),
        (f"{EXTERNAL}/inference_queue_depth", 404),
    ],
)
async def test_bad_paths(populated: RunningAdapter, path: str, code: int) -> None:
    status, body, _ = await populated.get(path)
    assert status == code
    assert body["kind"] == "Status"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_only_get_is_served(adapter_server: RunningAdapter, method: str) -> None:
    async with adapter_server.reader.request(
        method, f"{adapter_server.url}{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth"
    ) as response:
        assert response.status == 405
        body = await response.json()
    assert (body["kind"], body["reason"]) == ("Status", "MethodNotAllowed")


async def test_openapi(adapter_server: RunningAdapter) -> None:
    status, body, _ = await adapter_server.get("/openapi/v2")
    assert status == 200
    assert body["swagger"] == "2.0"
    assert body["paths"] == {}
    status, body, _ = await adapter_server.get("/openapi/v3")
    assert status == 404


async def test_own_metrics_count_requests_pushes_and_pods(populated: RunningAdapter) -> None:
    await populated.get(f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth")
    async with populated.reader.get(f"{populated.url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    assert 'adapter_pushes_total{reason="accepted",result="accepted"} 3.0' in text
    assert "adapter_tracked_pods 3.0" in text
    assert 'adapter_requests_total{code="200",route="custom_metric"} 1.0' in text
    assert "adapter_served_data_age_seconds_count 1.0" in text


# -- pushes ------------------------------------------------------------------------------------


async def _raw_push(
    server: RunningAdapter, body: bytes, headers: dict[str, str]
) -> tuple[int, dict]:
    async with server.anonymous.post(
        f"{server.url}/push/v1", data=body, headers=headers
    ) as response:
        return response.status, await response.json()


JSON_AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Content-Type": "application/json"}, 401),
        ({"Authorization": "Bearer wrong", "Content-Type": "application/json"}, 401),
        ({"Authorization": TOKEN, "Content-Type": "application/json"}, 401),
        ({"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"}, 415),
    ],
)
async def test_push_needs_the_token_and_json(
    adapter_server: RunningAdapter, headers: dict[str, str], code: int
) -> None:
    status, body = await _raw_push(adapter_server, b"{}", headers)
    assert status == code
    assert body["kind"] == "Status"
    assert len(adapter_server.state.store) == 0


async def test_oversized_push_gets_a_413_the_client_receives(
    adapter_server: RunningAdapter,
) -> None:
    status, body = await _raw_push(adapter_server, b" " * (300 * 1024), JSON_AUTH)
    assert status == 413
    assert "262144" in body["message"]
    assert len(adapter_server.state.store) == 0


async def test_a_compressed_push_is_limited_by_its_decompressed_size(
    adapter_server: RunningAdapter,
) -> None:
    """A small gzip body that inflates past the limit: our 413, not aiohttp's, counted."""
    bomb = gzip.compress(b" " * (300 * 1024))
    headers = {**JSON_AUTH, "Content-Encoding": "gzip"}
    status, body = await _raw_push(adapter_server, bomb, headers)
    assert status == 413
    assert "262144" in body["message"]
    assert len(adapter_server.state.store) == 0
    rejected = adapter_server.state.telemetry.registry.get_sample_value(
        "adapter_pushes_total", {"result": "rejected", "reason": "RequestEntityTooLarge"}
    )
    assert rejected == 1


async def test_invalid_push_names_the_field_and_changes_nothing(
    populated: RunningAdapter,
) -> None:
    before = populated.state.store.get(POD_A_REF)
    assert before is not None
    seq_before, gauges_before = before.last_seq, dict(before.gauges)
    body = (
        b'{"pod": {"namespace": "ml", "name": "model-7d4b9c-aaaaa", "uid": "uid-a"}, "seq": 99,'
        b' "gauges": {"inference_queue_depth": -1}}'
    )
    status, answer = await _raw_push(populated, body, JSON_AUTH)
    assert status == 422
    assert answer["details"]["causes"][0]["field"] == "gauges.inference_queue_depth"
    after = populated.state.store.get(POD_A_REF)
    assert after is before
    assert (after.last_seq, dict(after.gauges)) == (seq_before, gauges_before)


async def test_duplicate_push_is_acknowledged_and_ignored(populated: RunningAdapter) -> None:
    response = await populated.push(POD_A, 1, [5.0] * 10, {"inference_queue_depth": 42})
    assert response.status == 200
    status, body, _ = await populated.get(
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/{POD_A.name}/inference_queue_depth"
    )
    assert status == 200
    assert body["items"][0]["value"] == "3"


@pytest.mark.parametrize(
    "path",
    [
        f"{CUSTOM}/v1beta2/nodes/node-1/gpu_utilization",
        f"{CUSTOM}/v1beta2/nodes/*/inference_queue_depth",
        f"{CUSTOM}/v1beta1/namespaces/ml/inferencepools.x-k8s.io/pool/inference_queue_depth",
    ],
)
async def test_unknown_resources_are_404_naming_what_is_served(
    populated: RunningAdapter, path: str
) -> None:
    status, body, _ = await populated.get(path)
    assert status == 404
    assert "metrics are served for deployments.apps, namespaces, pods" in body["message"]
