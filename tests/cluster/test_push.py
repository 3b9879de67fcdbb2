"""Pods push with their projected service-account token and may report only for themselves."""

from __future__ import annotations

from pathlib import Path

from adapter.client import PodIdentity
from adapter.resources import PodRef
from tests.cluster.conftest import (
    AUDIENCE,
    CUSTOM,
    SHARED_TOKEN,
    ClusterAdapter,
    ClusterPki,
    eventually,
    serve_cluster_adapter,
)
from tests.conftest import Pki
from tests.kubeapi import Identity, KubeApiDouble

QUEUE = f"{CUSTOM}/namespaces/ml/pods/{{}}/inference_queue_depth"


async def two_pods(cluster: ClusterAdapter) -> tuple[PodIdentity, PodIdentity]:
    api = cluster.kubeapi
    uid_a = api.add_pod("ml", "model-a", {"app": "model"})
    uid_b = api.add_pod("ml", "model-b", {"app": "model"})
    api.add_pod_token("token-a", "ml", "model-a", uid_a, AUDIENCE)
    api.add_pod_token("token-b", "ml", "model-b", uid_b, AUDIENCE)
    await _seen(cluster, "model-a", "model-b")
    return (
        PodIdentity("ml", "model-a", uid_a, {"app": "model"}, "model"),
        PodIdentity("ml", "model-b", uid_b, {"app": "model"}, "model"),
    )


async def _seen(cluster: ClusterAdapter, *names: str) -> None:
    await eventually(lambda: all(cluster.view.pod("ml", n) for n in names))


async def test_a_pod_pushes_with_its_own_token(cluster: ClusterAdapter) -> None:
    pod_a, _ = await two_pods(cluster)
    status, body = await cluster.push("token-a", pod_a, 1, {"inference_queue_depth": 3})
    assert (status, body) == (200, {"accepted": True})
    cluster.kubeapi.grant("hpa")
    status, body = await cluster.as_user("hpa", QUEUE.format("model-a"))
    assert status == 200, body
    assert body["items"][0]["value"] == "3"
    review = cluster.kubeapi.token_reviews[0]
    assert review == {"token": "token-a", "audiences": [AUDIENCE]}


async def test_a_pod_pushing_for_another_pod_is_forbidden(cluster: ClusterAdapter) -> None:
    _, pod_b = await two_pods(cluster)
    status, body = await cluster.push("token-a", pod_b, 1, {"inference_queue_depth": 99})
    assert status == 403, body
    assert body["reason"] == "Forbidden"
    assert "pod ml/model-a" in body["message"] and "may push only for itself" in body["message"]
    assert cluster.state.store.get(PodRef("ml", "model-b")) is None


async def test_refused_pushes_leave_nothing_in_memory(cluster: ClusterAdapter) -> None:
    """Identity is checked before anything is kept: pushes that claim other pods, with the most
    and largest labels a push may carry, cost no memory once refused."""
    pod_a, pod_b = await two_pods(cluster)
    labels = {f"{'p' * 200}.example.com/{'k' * 60}{i:03d}": "v" * 63 for i in range(64)}
    for i in range(20):
        forged = PodIdentity("ml", f"model-x{i}", pod_b.uid, labels, "model")
        assert (await cluster.push("token-a", forged, 1))[0] == 403
    assert len(cluster.state.known_pods) == 0
    assert len(cluster.state.store) == 0
    assert (await cluster.push("token-a", pod_a, 1))[0] == 200
    assert len(cluster.state.known_pods) == 1


async def test_a_stale_uid_is_forbidden(cluster: ClusterAdapter) -> None:
    await two_pods(cluster)
    forged = PodIdentity("ml", "model-a", "some-other-uid", {}, "model")
    status, body = await cluster.push("token-a", forged, 1)
    assert status == 403, body


async def test_tokens_for_another_audience_are_refused(cluster: ClusterAdapter) -> None:
    pod_a, _ = await two_pods(cluster)
    cluster.kubeapi.add_pod_token("wrong-aud", "ml", "model-a", pod_a.uid, "vault")
    status, body = await cluster.push("wrong-aud", pod_a, 1)
    assert status == 401, body
    assert "not valid for audience 'inference-metrics-adapter'" in body["message"]


async def test_a_token_not_bound_to_a_pod_is_forbidden(cluster: ClusterAdapter) -> None:
    pod_a, _ = await two_pods(cluster)
    cluster.kubeapi.add_token(
        "sa-token", Identity("system:serviceaccount:ml:default", audiences=[AUDIENCE])
    )
    status, body = await cluster.push("sa-token", pod_a, 1)
    assert status == 403, body
    assert "not a service-account token bound to a pod" in body["message"]


async def test_pushes_for_pods_that_do_not_exist_are_refused(cluster: ClusterAdapter) -> None:
    pod_a, _ = await two_pods(cluster)
    cluster.kubeapi.delete_pod("ml", "model-a")
    await eventually(lambda: cluster.view.pod("ml", "model-a") is None)
    status, body = await cluster.push("token-a", pod_a, 1)
    assert status == 403, body
    assert body["message"] == "pod ml/model-a does not exist in the cluster"


async def test_push_token_reviews_are_cached(cluster: ClusterAdapter) -> None:
    pod_a, _ = await two_pods(cluster)
    for seq in range(1, 6):
        assert (await cluster.push("token-a", pod_a, seq))[0] == 200
    assert len(cluster.kubeapi.token_reviews) == 1


async def test_the_shared_token_is_refused_in_a_cluster(cluster: ClusterAdapter) -> None:
    pod_a, _ = await two_pods(cluster)
    status, body = await cluster.push(SHARED_TOKEN, pod_a, 1)
    assert status == 401, body


async def test_the_shared_token_works_when_explicitly_allowed(
    pki: Pki, kubeapi: KubeApiDouble, cluster_pki: ClusterPki, tmp_path: Path
) -> None:
    async with serve_cluster_adapter(
        pki, kubeapi, cluster_pki, tmp_path, allow_shared_push_token=True
    ) as cluster:
        pod_a, _ = await two_pods(cluster)
        assert (await cluster.push(SHARED_TOKEN, pod_a, 1))[0] == 200
        assert (await cluster.push("token-a", pod_a, 2))[0] == 200
        ghost = PodIdentity("ml", "ghost", "uid-ghost", {}, "model")
        status, body = await cluster.push(SHARED_TOKEN, ghost, 1)
        assert status == 403, body
