"""When kube-apiserver goes away: cached answers serve until they expire, then 503, never open."""

from __future__ import annotations

from adapter.client import PodIdentity
from tests.cluster.conftest import AUDIENCE, CUSTOM, ClusterAdapter, eventually
from tests.kubeapi import Identity

PODS = f"{CUSTOM}/namespaces/ml/pods/*/inference_queue_depth"


async def test_cached_reviews_serve_then_503_then_recovery(cluster: ClusterAdapter) -> None:
    api = cluster.kubeapi
    uid = api.add_pod("ml", "model-a", {"app": "model"})
    api.add_pod_token("token-a", "ml", "model-a", uid, AUDIENCE)
    api.add_token("hpa-token", Identity("system:serviceaccount:kube-system:hpa"))
    api.grant("alice", "system:serviceaccount:kube-system:hpa")
    await eventually(lambda: cluster.view.pod("ml", "model-a") is not None)
    pod = PodIdentity("ml", "model-a", uid, {}, "model")
    token = {"Authorization": "Bearer hpa-token"}
    assert (await cluster.push("token-a", pod, 1, {"inference_queue_depth": 5}))[0] == 200
    assert (await cluster.as_user("alice", PODS))[0] == 200
    assert (await cluster.get("anonymous", PODS, headers=token))[0] == 200
    reviews = len(api.access_reviews), len(api.token_reviews)

    api.down()
    cluster.review_clock.advance(5)  # within every TTL: cached answers keep serving
    status, body = await cluster.as_user("alice", PODS)
    assert status == 200, body
    assert body["items"][0]["value"] == "5"
    assert (await cluster.get("anonymous", PODS, headers=token))[0] == 200
    assert (await cluster.push("token-a", pod, 2, {"inference_queue_depth": 6}))[0] == 200
    assert (len(api.access_reviews), len(api.token_reviews)) == reviews

    cluster.review_clock.advance(6)  # every cached answer has expired
    status, body = await cluster.as_user("alice", PODS)
    assert status == 503, body
    assert body["kind"] == "Status" and body["reason"] == "ServiceUnavailable"
    assert 'cannot authorize User "alice": the Kubernetes API is unreachable' in body["message"]
    status, body = await cluster.get("anonymous", PODS, headers=token)
    assert status == 503
    assert "cannot authenticate the bearer token" in body["message"]
    status, body = await cluster.push("token-a", pod, 3)
    assert status == 503, body
    status, body = await cluster.as_user("mallory", PODS)  # never seen: no cache to fall back on
    assert status == 503

    api.up()
    status, body = await cluster.as_user("alice", PODS)
    assert status == 200, body
    assert (await cluster.as_user("mallory", PODS))[0] == 403
