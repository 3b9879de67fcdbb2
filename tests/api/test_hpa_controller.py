"""``HpaController.sync`` over a real model-server process pushing to the real adapter over TLS:
the conditions, statuses and events an HPA shows, and the scale it applies."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from localcluster import hpa, manifests
from localcluster.controller import HpaController, SyncRecord
from localcluster.metrics_client import MetricsClient
from localcluster.ports import free_port
from localcluster.supervisor import Deployment, DeploymentSpec
from tests.api.conftest import TOKEN, RunningAdapter, serve_adapter
from tests.conftest import Pki

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml"
DEPLOYMENT = hpa.ObjectReference("Deployment", "model", "apps/v1")


def hpa_yaml(metric: str) -> hpa.HorizontalPodAutoscaler:
    """An HPA on Deployment ml/model (1..5 replicas, no behavior) with one metric."""
    return manifests.parse_hpa(
        yaml.safe_load(
            f"""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: model, namespace: ml}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: model}}
  minReplicas: 1
  maxReplicas: 5
  metrics:
{metric}
"""
        )
    )


QUEUE_DEPTH_PODS = """
    - type: Pods
      pods:
        metric: {name: inference_queue_depth}
        target: {type: AverageValue, averageValue: "4"}
"""
GPU_MEMORY_PODS = """
    - type: Pods
      pods:
        metric: {name: gpu_memory}
        target: {type: AverageValue, averageValue: "4"}
"""
QUEUE_DEPTH_ON_DEPLOYMENT = """
    - type: Object
      object:
        describedObject: {apiVersion: apps/v1, kind: Deployment, name: model}
        metric: {name: inference_queue_depth}
        target: {type: Value, value: "1"}
"""


async def until(condition: Callable[[], bool], timeout_seconds: float = 15) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def served(adapter: RunningAdapter, path: str) -> str | None:
    """The value the adapter serves at ``path`` (one item), None while it has none."""
    status, body, _ = await adapter.get(path)
    return body["items"][0]["value"] if status == 200 else None


@dataclass
class Cluster:
    adapter: RunningAdapter
    deployment: Deployment
    pki: Pki

    @contextlib.asynccontextmanager
    async def controller(
        self, autoscaler: hpa.HorizontalPodAutoscaler, url: str | None = None
    ) -> AsyncIterator[HpaController]:
        async with MetricsClient(url or self.adapter.url, self.pki.client_context()) as client:
            yield HpaController(autoscaler, self.deployment, client)


@contextlib.asynccontextmanager
async def cluster(pki: Pki, tmp_path: Path, *server_args: str) -> AsyncIterator[Cluster]:
    """The adapter (real time) and a Deployment of one ready model-server that has pushed."""
    token_file = tmp_path / "push-token"
    token_file.write_text(TOKEN)
    async with serve_adapter(pki, clock=time.time) as adapter:
        spec = DeploymentSpec(
            name="model",
            namespace="ml",
            labels={"app": "model"},
            server_args=(
                "--model-name=m",
                "--model-size-mb=1",
                f"--adapter-url={adapter.url}",
                f"--adapter-ca-file={pki.ca_cert}",
                f"--push-token-file={token_file}",
                "--push-interval=200ms",
                *server_args,
            ),
            termination_grace_seconds=1,
        )
        async with Deployment(spec, tmp_path / "pods") as deployment:
            deployment.scale(1)
            await until(lambda: deployment.ready_count() == 1)
            deadline = time.monotonic() + 15
            path = f"{CUSTOM}/deployments.apps/model/inference_queue_depth"
            while await served(adapter, path) is None:
                assert time.monotonic() < deadline, "the pod never pushed"
                await asyncio.sleep(0.05)
            yield Cluster(adapter, deployment, pki)


def conditions(record: SyncRecord) -> dict[str, tuple[str, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in record.conditions}


async def test_a_pushing_pod_gives_a_valid_metric_and_its_queue_depth(
    pki: Pki, tmp_path: Path
) -> None:
    async with cluster(pki, tmp_path) as running:
        (pod,) = running.deployment.pods
        query = f"{CUSTOM}/pods/{pod.name}/inference_queue_depth"
        async with running.controller(hpa_yaml(QUEUE_DEPTH_PODS)) as controller:
            record = await controller.sync()
        depth = await served(running.adapter, query)
    assert depth == "0", "an idle pod waits for nothing"
    assert conditions(record)["ScalingActive"] == (
        "True",
        "ValidMetricFound",
        "the HPA was able to successfully calculate a replica count from pods metric"
        " inference_queue_depth",
    )
    # The proposal is 0 pods; the first pass remembers the current size, so the legacy
    # downscale window holds it at 1 before minReplicas would.
    assert conditions(record)["AbleToScale"][:2] == ("True", "ScaleDownStabilized")
    assert conditions(record)["ScalingLimited"][:2] == ("False", "DesiredWithinRange")
    assert record.metrics == (
        hpa.MetricStatus(
            "Pods",
            hpa.MetricValueStatus(average_value_milli=0),
            metric_name="inference_queue_depth",
        ),
    )
    assert (record.current_replicas, record.ready_replicas, record.desired_replicas) == (1, 1, 1)
    assert record.events == ()
    assert controller.autoscaler.status.conditions == record.conditions


async def test_a_metric_the_adapter_does_not_serve_fails_with_its_404_text(
    pki: Pki, tmp_path: Path
) -> None:
    async with cluster(pki, tmp_path) as running:
        async with running.controller(hpa_yaml(GPU_MEMORY_PODS)) as controller:
            record = await controller.sync()
        status, body, _ = await running.adapter.get(
            f"{CUSTOM}/pods/*/gpu_memory?labelSelector=app%3Dmodel"
        )
        assert running.deployment.replicas == 1
    assert status == 404
    error = (
        "unable to get metric gpu_memory: unable to fetch metrics from custom metrics API: "
        + body["message"]
    )
    assert conditions(record)["ScalingActive"] == (
        "False",
        "FailedGetPodsMetric",
        f"the HPA was unable to compute the replica count: {error}",
    )
    assert [(e.type, e.reason, e.message) for e in record.events] == [
        ("Warning", "FailedGetPodsMetric", error),
        (
            "Warning",
            "FailedComputeMetricsReplicas",
            "invalid metrics (1 invalid out of 1), first error is: "
            f"failed to get pods metric value: {error}",
        ),
    ]
    assert record.metrics == (None,)


async def test_an_unreachable_adapter_fails_the_same_way_and_nothing_scales(
    pki: Pki, tmp_path: Path
) -> None:
    closed = f"https://127.0.0.1:{free_port()}"
    async with cluster(pki, tmp_path) as running:
        pods = list(running.deployment.pods)
        autoscaler = hpa_yaml(QUEUE_DEPTH_PODS)
        async with running.controller(autoscaler, url=closed) as controller:
            records = [await controller.sync(), await controller.sync()]
        assert running.deployment.replicas == 1
        assert running.deployment.pods == pods
    for record in records:
        status, reason, message = conditions(record)["ScalingActive"]
        assert (status, reason) == ("False", "FailedGetPodsMetric")
        assert message.startswith(
            "the HPA was unable to compute the replica count: unable to get metric"
            " inference_queue_depth: unable to fetch metrics from custom metrics API:"
            f' Get "{closed}/apis": '
        )
        assert [e.reason for e in record.events] == [
            "FailedGetPodsMetric",
            "FailedComputeMetricsReplicas",
        ]
        assert record.desired_replicas == 0, "desiredReplicas keeps its previous (unset) value"


async def test_an_object_metric_on_the_deployment_scales_per_its_value_target(
    pki: Pki, tmp_path: Path
) -> None:
    """Five requests held by a one-slot pod (1 s each): four wait, the Deployment's queue depth
    is 4 against a Value target of 1, so the HPA asks for 4 replicas."""
    held = 5
    async with cluster(
        pki, tmp_path, "--service-time=constant:1s", "--max-concurrency=1"
    ) as running:
        (pod,) = running.deployment.pods
        body = {
            "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.25] * 64}]
        }
        async with aiohttp.ClientSession() as session:

            async def infer() -> int:
                async with session.post(f"{pod.url}/v2/models/m/infer", json=body) as response:
                    return response.status

            requests = [asyncio.ensure_future(infer()) for _ in range(held)]
            path = f"{CUSTOM}/deployments.apps/model/inference_queue_depth"
            deadline = time.monotonic() + 0.8
            while await served(running.adapter, path) != str(held - 1):
                assert time.monotonic() < deadline, "the queue never showed in the adapter"
                await asyncio.sleep(0.02)
            async with running.controller(hpa_yaml(QUEUE_DEPTH_ON_DEPLOYMENT)) as controller:
                record = await controller.sync()
            replicas = running.deployment.replicas
            live = len([p for p in running.deployment.pods if p.deleting_since is None])
            assert await asyncio.gather(*requests) == [200] * held
    (status,) = record.metrics
    assert status is not None and status.type == "Object"
    assert (status.metric_name, status.described_object) == ("inference_queue_depth", DEPLOYMENT)
    # The mean over the pod's last push interval: 4 unless the first request just finished.
    value = status.current.value_milli
    assert value is not None and 3000 < value <= 4000
    expected = math.ceil(value / 1000)  # usage / target x the one current replica
    assert expected == 4
    assert (record.current_replicas, record.desired_replicas, replicas, live) == (1, 4, 4, 4)
    assert conditions(record)["ScalingActive"][:2] == ("True", "ValidMetricFound")
    assert conditions(record)["AbleToScale"][:2] == ("True", "SucceededRescale")
    assert [(e.reason, e.message) for e in record.events] == [
        (
            "SuccessfulRescale",
            "New size: 4; reason: Deployment metric inference_queue_depth above target",
        )
    ]
