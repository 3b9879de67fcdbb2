"""The cluster view: selectors, deployments and services resolve against the real pods."""

from __future__ import annotations

from adapter.client import PodIdentity
from adapter.resources import PodRef
from tests.cluster.conftest import AUDIENCE, CUSTOM, EXTERNAL, ClusterAdapter, eventually

DEPTH = "inference_queue_depth"


async def model_pods(cluster: ClusterAdapter) -> list[PodIdentity]:
    """Deployment ``model`` (two pods through its ReplicaSet), a Service, and a stray pod; each
    pushes queue depth 1, 2, 4. Pushed labels are deliberately wrong: the real ones must win."""
    api = cluster.kubeapi
    api.add_deployment("ml", "model", {"app": "model"}, {"tier": "inference"})
    api.add_service("ml", "model-svc", {"app": "model"}, {"tier": "inference"})
    identities = []
    for name, labels, replica_set in [
        ("model-a", {"app": "model"}, "model-rs"),
        ("model-b", {"app": "model"}, "model-rs"),
        ("stray", {"app": "other"}, None),
    ]:
        uid = api.add_pod("ml", name, labels, replica_set)
        api.add_pod_token(f"token-{name}", "ml", name, uid, AUDIENCE)
        identities.append(PodIdentity("ml", name, uid, {"app": "pushed-lie"}, "pushed-lie"))
    await eventually(
        lambda: (
            cluster.view.pod("ml", "stray") is not None
            and cluster.view.workload("services", "ml", "model-svc") is not None
            and cluster.view.deployment_of(cluster.view.pod("ml", "model-a")) == "model"
        )
    )
    for index, identity in enumerate(identities):
        status, _ = await cluster.push(f"token-{identity.name}", identity, 1, {DEPTH: 2**index})
        assert status == 200
    api.grant("hpa")
    return identities


async def test_pod_selectors_match_the_real_labels(cluster: ClusterAdapter) -> None:
    await model_pods(cluster)
    status, body = await cluster.as_user(
        "hpa", f"{CUSTOM}/namespaces/ml/pods/*/{DEPTH}?labelSelector=app%3Dmodel"
    )
    assert status == 200, body
    assert sorted(i["describedObject"]["name"] for i in body["items"]) == ["model-a", "model-b"]
    status, body = await cluster.as_user(
        "hpa", f"{CUSTOM}/namespaces/ml/pods/*/{DEPTH}?labelSelector=app%3Dpushed-lie"
    )
    assert status == 404, body
    assert "matched 0 of 3 pods in namespace ml" in body["message"]


async def test_deployments_and_services_are_the_pods_their_selectors_pick(
    cluster: ClusterAdapter,
) -> None:
    await model_pods(cluster)
    for path, kind in (
        (f"{CUSTOM}/namespaces/ml/deployments.apps/model/{DEPTH}", "Deployment"),
        (f"{CUSTOM}/namespaces/ml/services/model-svc/{DEPTH}", "Service"),
    ):
        status, body = await cluster.as_user("hpa", path)
        assert status == 200, body
        assert body["items"][0]["value"] == "3"
        assert body["items"][0]["describedObject"]["kind"] == kind
    status, body = await cluster.as_user(
        "hpa", f"{CUSTOM}/namespaces/ml/deployments.apps/*/{DEPTH}?labelSelector=tier%3Dinference"
    )
    assert status == 200, body
    assert [i["describedObject"]["name"] for i in body["items"]] == ["model"]
    status, body = await cluster.as_user("hpa", f"{CUSTOM}/namespaces/ml/services/nope/{DEPTH}")
    assert status == 404
    assert body["message"] == "service ml/nope does not exist in the cluster"


async def test_external_series_follow_the_real_owner(cluster: ClusterAdapter) -> None:
    await model_pods(cluster)
    status, body = await cluster.as_user("hpa", f"{EXTERNAL}/namespaces/ml/{DEPTH}")
    assert status == 200, body
    assert [(i["metricLabels"], i["value"]) for i in body["items"]] == [
        ({"deployment": "model"}, "3")
    ]


async def test_services_appear_in_discovery(cluster: ClusterAdapter) -> None:
    cluster.kubeapi.grant("hpa")
    status, body = await cluster.as_user("hpa", CUSTOM)
    assert status == 200
    assert f"services/{DEPTH}" in {r["name"] for r in body["resources"]}


async def test_a_deleted_pod_disappears_at_once(cluster: ClusterAdapter) -> None:
    await model_pods(cluster)
    path = f"{CUSTOM}/namespaces/ml/pods/model-a/{DEPTH}"
    assert (await cluster.as_user("hpa", path))[0] == 200
    cluster.kubeapi.delete_pod("ml", "model-a")
    await eventually(lambda: cluster.state.store.get(PodRef("ml", "model-a")) is None)
    status, body = await cluster.as_user("hpa", path)
    assert status == 404
    assert body["message"] == "pod ml/model-a does not exist in the cluster"
    status, body = await cluster.as_user(
        "hpa", f"{CUSTOM}/namespaces/ml/deployments.apps/model/{DEPTH}"
    )
    assert body["items"][0]["value"] == "2"


async def test_a_pod_recreated_under_its_name_starts_empty(cluster: ClusterAdapter) -> None:
    identities = await model_pods(cluster)
    old_uid = identities[0].uid
    cluster.kubeapi.delete_pod("ml", "model-a")
    new_uid = cluster.kubeapi.add_pod("ml", "model-a", {"app": "model"}, "model-rs")
    await eventually(
        lambda: (pod := cluster.view.pod("ml", "model-a")) is not None and pod.uid == new_uid
    )
    assert cluster.state.store.get(PodRef("ml", "model-a")) is None
    assert old_uid != new_uid
    status, body = await cluster.as_user("hpa", f"{CUSTOM}/namespaces/ml/pods/model-a/{DEPTH}")
    assert status == 404
    assert "never pushed" in body["message"]
