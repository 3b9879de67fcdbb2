"""SubjectAccessReview for every metrics and discovery request: attributes, 403s, caching."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import ConnectionConfig
from tests.cluster.conftest import (
    CUSTOM,
    EXTERNAL,
    ClusterAdapter,
    ClusterPki,
    serve_cluster_adapter,
)
from tests.conftest import Pki
from tests.kubeapi import KubeApiDouble

CASES = [
    (CUSTOM, {"nonResourceAttributes": {"path": CUSTOM, "verb": "get"}}),
    ("/apis", {"nonResourceAttributes": {"path": "/apis", "verb": "get"}}),
    (
        f"{CUSTOM}/namespaces/ml/pods/*/inference_queue_depth",
        {
            "resourceAttributes": {
                "namespace": "ml",
                "verb": "get",
                "group": "custom.metrics.k8s.io",
                "version": "v1beta2",
                "resource": "pods",
                "subresource": "inference_queue_depth",
                "name": "*",
            }
        },
    ),
    (
        f"{CUSTOM}/namespaces/ml/metrics/inference_queue_depth",
        {
            "resourceAttributes": {
                "namespace": "ml",
                "verb": "get",
                "group": "custom.metrics.k8s.io",
                "version": "v1beta2",
                "resource": "metrics",
                "name": "inference_queue_depth",
            }
        },
    ),
    (
        f"{EXTERNAL}/namespaces/ml/inference_queue_depth",
        {
            "resourceAttributes": {
                "namespace": "ml",
                "verb": "list",
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "resource": "inference_queue_depth",
            }
        },
    ),
]


@pytest.mark.parametrize(("path", "attributes"), CASES)
async def test_review_attributes_follow_the_request_info_rules(
    cluster: ClusterAdapter, path: str, attributes: dict
) -> None:
    cluster.kubeapi.grant("hpa")
    await cluster.as_user("hpa", path)
    spec = cluster.kubeapi.access_reviews[-1]
    assert {k: v for k, v in spec.items() if k.endswith("Attributes")} == attributes


async def test_a_denied_review_is_a_403_status_naming_user_and_resource(
    cluster: ClusterAdapter,
) -> None:
    cluster.kubeapi.policy = lambda spec: (False, "no RBAC policy matched")
    status, body = await cluster.as_user(
        "mallory", f"{CUSTOM}/namespaces/ml/pods/*/inference_queue_depth"
    )
    assert status == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods.custom.metrics.k8s.io "*" is forbidden: User "mallory" cannot get'
        ' resource "pods/inference_queue_depth" in API group "custom.metrics.k8s.io" in the'
        ' namespace "ml": no RBAC policy matched',
        "reason": "Forbidden",
        "details": {"group": "custom.metrics.k8s.io", "kind": "pods", "name": "*"},
        "code": 403,
    }


async def test_external_denial_names_the_list_verb(cluster: ClusterAdapter) -> None:
    status, body = await cluster.as_user(
        "mallory", f"{EXTERNAL}/namespaces/ml/inference_queue_depth"
    )
    assert status == 403
    assert body["message"] == (
        'inference_queue_depth.external.metrics.k8s.io is forbidden: User "mallory" cannot list'
        ' resource "inference_queue_depth" in API group "external.metrics.k8s.io" in the'
        ' namespace "ml"'
    )


async def test_allow_and_deny_are_cached_for_their_own_ttls(
    pki: Pki, kubeapi: KubeApiDouble, cluster_pki: ClusterPki, tmp_path: Path
) -> None:
    async with serve_cluster_adapter(
        pki,
        kubeapi,
        cluster_pki,
        tmp_path,
        authorized_ttl_seconds=10,
        unauthorized_ttl_seconds=2,
    ) as cluster:
        kubeapi.grant("alice")
        for _ in range(3):
            assert (await cluster.as_user("alice", CUSTOM))[0] == 200
            assert (await cluster.as_user("bob", CUSTOM))[0] == 403
        assert len(kubeapi.access_reviews) == 2
        kubeapi.grant("bob")
        kubeapi.revoke("alice")
        cluster.review_clock.advance(3)  # past the deny TTL only
        assert (await cluster.as_user("alice", CUSTOM))[0] == 200
        assert (await cluster.as_user("bob", CUSTOM))[0] == 200
        cluster.review_clock.advance(8)  # past the allow TTL
        assert (await cluster.as_user("alice", CUSTOM))[0] == 403
        assert len(kubeapi.access_reviews) == 4


async def test_always_allow_paths_skip_authentication_and_authorization(
    pki: Pki, kubeapi: KubeApiDouble, cluster_pki: ClusterPki, tmp_path: Path
) -> None:
    async with serve_cluster_adapter(
        pki, kubeapi, cluster_pki, tmp_path, always_allow_paths=("/healthz", "/openapi/*")
    ) as cluster:
        for path in ("/healthz", "/openapi/v2"):
            async with cluster.session("anonymous").get(f"{cluster.url}{path}") as response:
                assert response.status == 200
        status, _ = await cluster.get("anonymous", "/livez")
        assert status == 403
        assert [s["nonResourceAttributes"]["path"] for s in kubeapi.access_reviews] == ["/livez"]


async def test_the_request_deadline_covers_the_reviews(
    pki: Pki, kubeapi: KubeApiDouble, cluster_pki: ClusterPki, tmp_path: Path
) -> None:
    """A SubjectAccessReview that kube-apiserver takes too long to answer ends the request with
    a 504 at the request timeout, as a slow handler does."""
    kubeapi.grant("hpa")
    kubeapi.review_delay_seconds = 2.5
    quick = ConnectionConfig(request_timeout_seconds=0.2)
    async with serve_cluster_adapter(pki, kubeapi, cluster_pki, tmp_path, quick) as adapter:
        status, body = await adapter.as_user("hpa", f"{CUSTOM}/namespaces/ml/pods/*/x")
    assert (status, body["reason"]) == (504, "Timeout")
    assert len(kubeapi.access_reviews) == 1
