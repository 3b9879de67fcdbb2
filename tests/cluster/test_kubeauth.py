"""The pure parts of cluster-mode security: ConfigMap parsing, certificate checks, headers,
request attributes, messages, caches, and the view's bookkeeping."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapter import clientcerts, kube, kubeauth, preflight, selectors
from adapter.resources import PodRef
from adapter.transport import User
from tests.cluster.conftest import ClusterPki
from tests.cluster.pki import issue, make_ca

NOW = datetime.datetime.now(datetime.UTC)


def test_configmap_lists_are_json_arrays(cluster_pki: ClusterPki) -> None:
    source = kubeauth.parse_authentication_configmap(cluster_pki.configmap())
    header = source.request_header
    assert header is not None
    assert header.allowed_names == ("front-proxy-client",)
    assert header.username_headers == ("X-Remote-User",)
    assert header.uid_headers == ("X-Remote-Uid",)
    assert source.client_ca_pem == cluster_pki.client_ca.pem


def test_flags_override_the_configmap(cluster_pki: ClusterPki) -> None:
    overrides = kubeauth.RequestHeaderOverrides(
        allowed_names=("aggregator",), username_headers=("X-User",)
    )
    header = kubeauth.parse_authentication_configmap(cluster_pki.configmap(), overrides)
    assert header.request_header is not None
    assert header.request_header.allowed_names == ("aggregator",)
    assert header.request_header.username_headers == ("X-User",)


def test_without_a_requestheader_ca_no_proxy_is_trusted(cluster_pki: ClusterPki) -> None:
    data = cluster_pki.configmap()
    del data["requestheader-client-ca-file"]
    assert kubeauth.parse_authentication_configmap(data).request_header is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("requestheader-allowed-names", "front-proxy-client"), ("client-ca-file", "garbage")],
)
def test_malformed_configmaps_are_refused(cluster_pki: ClusterPki, key: str, value: str) -> None:
    with pytest.raises(ValueError):
        kubeauth.parse_authentication_configmap(cluster_pki.configmap(**{key: value}))


def test_certificate_checks(cluster_pki: ClusterPki, tmp_path: Path) -> None:
    ca = cluster_pki.front_proxy_ca
    roots = [ca.cert]
    verify = clientcerts.verify_client_certificate
    verify(cluster_pki.front_proxy.cert, [], roots, NOW)
    expired = issue(
        ca,
        tmp_path,
        "old",
        "front-proxy-client",
        valid_from=NOW - datetime.timedelta(days=10),
        valid_until=NOW - datetime.timedelta(days=1),
    )
    with pytest.raises(clientcerts.CertificateRejected, match="not now"):
        verify(expired.cert, [], roots, NOW)
    server = issue(ca, tmp_path, "srv", "x", usage=ExtendedKeyUsageOID.SERVER_AUTH)
    with pytest.raises(clientcerts.CertificateRejected, match="clientAuth"):
        verify(server.cert, [], roots, NOW)
    no_usage = issue(ca, tmp_path, "any", "x", usage=None)
    verify(no_usage.cert, [], roots, NOW)  # Go: no EKU extension allows every usage
    other = make_ca(tmp_path, "other", "front-proxy-ca")  # same name, another key
    impostor = issue(other, tmp_path, "imp", "front-proxy-client")
    with pytest.raises(clientcerts.CertificateRejected, match="not signed by a trusted CA"):
        verify(impostor.cert, [], roots, NOW)
    intermediate = issue(ca, tmp_path, "mid", "mid", is_ca=True)
    leaf = issue(intermediate, tmp_path, "leaf", "front-proxy-client")
    verify(leaf.cert, [intermediate.cert], roots, NOW)
    with pytest.raises(clientcerts.CertificateRejected):
        verify(leaf.cert, [], roots, NOW)
    not_a_ca = issue(ca, tmp_path, "notca", "mid")
    fake_leaf = issue(not_a_ca, tmp_path, "fake", "front-proxy-client")
    with pytest.raises(clientcerts.CertificateRejected):
        verify(fake_leaf.cert, [not_a_ca.cert], roots, NOW)


def test_user_from_headers() -> None:
    config = kubeauth.RequestHeaderConfig(
        b"",
        username_headers=("X-Remote-User", "X-Other-User"),
        group_headers=("X-Remote-Group",),
        extra_headers_prefixes=("X-Remote-Extra-",),
        uid_headers=("X-Remote-Uid",),
    )
    headers = [
        ("x-remote-user", ""),
        ("X-Other-User", "bob"),
        ("X-Remote-Group", "a"),
        ("X-Remote-Group", ""),
        ("X-REMOTE-GROUP", "b"),
        ("X-Remote-Extra-Reason%2Fwhy", "audit"),
        ("X-Remote-Extra-", "ignored"),
        ("X-Remote-Uid", "42"),
    ]
    user = kubeauth.user_from_headers(headers, config)
    assert user == User("bob", ("a", "b", "system:authenticated"), "42", {"reason/why": ("audit",)})
    assert kubeauth.user_from_headers([("X-Remote-Group", "a")], config) is None


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/apis", {}, ("get", False, "", "", "", "")),
        ("GET", "/apis/custom.metrics.k8s.io/v1beta1", {}, ("get", False, "", "", "", "")),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta2/nodes/n1/gpu_utilization",
            {},
            ("get", True, "nodes", "gpu_utilization", "n1", ""),
        ),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/pods/*/q",
            {},
            ("get", True, "pods", "q", "*", "ml"),
        ),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml",
            {},
            ("get", True, "namespaces", "", "ml", "ml"),
        ),
        (
            "GET",
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/q",
            {"watch": "true"},
            ("watch", True, "q", "", "", "ml"),
        ),
        ("POST", "/push/v1", {}, ("post", False, "", "", "", "")),
        ("GET", "/metrics", {}, ("get", False, "", "", "", "")),
    ],
)
def test_request_attributes(method: str, path: str, query: dict, expected: tuple) -> None:
    a = kubeauth.request_attributes(method, path, query)
    assert (a.verb, a.resource_request, a.resource, a.subresource, a.name, a.namespace) == expected


def test_forbidden_messages_match_kube_apiserver() -> None:
    user = User("system:serviceaccount:kube-system:horizontal-pod-autoscaler")
    cluster_scoped = kubeauth.request_attributes(
        "GET", "/apis/custom.metrics.k8s.io/v1beta2/nodes/*/gpu", {}
    )
    assert kubeauth.forbidden_message(user, cluster_scoped) == (
        'nodes.custom.metrics.k8s.io "*" is forbidden: User'
        ' "system:serviceaccount:kube-system:horizontal-pod-autoscaler" cannot get resource'
        ' "nodes/gpu" in API group "custom.metrics.k8s.io" at the cluster scope'
    )


def test_ttl_cache_expires_and_stays_bounded() -> None:
    cache = kubeauth.TtlCache(max_entries=2)
    cache.put("a", 1, 10, now=0)
    assert cache.get("a", 9.9) == 1
    assert cache.get("a", 10) is None
    for key in "bcd":
        cache.put(key, key, 10, now=0)
    assert len(cache) == 2
    assert cache.get("b", 0) is None
    cache.put("e", 1, 0, now=0)  # a TTL of 0 disables caching
    assert cache.get("e", 0) is None


def test_always_allow_patterns() -> None:
    patterns = ("/healthz", "/debug/*")
    assert kubeauth.path_allowed("/healthz", patterns)
    assert not kubeauth.path_allowed("/healthz/x", patterns)
    assert kubeauth.path_allowed("/debug/pprof", patterns)


def test_label_selectors_from_objects() -> None:
    selector = kube.selector_from_label_selector(
        {
            "matchLabels": {"app": "model"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.matches({"app": "model", "tier": "a"})
    assert not selector.matches({"app": "model", "tier": "a", "canary": "1"})
    with pytest.raises(selectors.InvalidSelector):
        kube.selector_from_label_selector({"matchExpressions": [{"key": "k", "operator": "Gt"}]})


def _pod(name: str, uid: str) -> dict:
    return {"metadata": {"namespace": "ml", "name": name, "uid": uid, "labels": {"a": "b"}}}


async def test_the_view_reports_pods_that_go_away() -> None:
    gone: list[tuple[PodRef, str]] = []
    view = kube.ClusterView(lambda pod, uid: gone.append((pod, uid)))
    apply = view.deliver(kube.PODS)
    apply(kube.SYNC, [_pod("a", "1"), _pod("b", "2")])
    apply("MODIFIED", _pod("a", "1"))
    apply("ADDED", _pod("b", "3"))  # recreated under the same name
    apply("DELETED", _pod("zz", "9"))  # unknown: nothing happens
    apply(kube.SYNC, [_pod("b", "3")])  # a relist that no longer has "a"
    assert gone == [(PodRef("ml", "b"), "2"), (PodRef("ml", "a"), "1")]
    assert [p.name for p in view.pods("ml")] == ["b"]
    assert not view.ready.is_set()
    for kind in (kube.REPLICA_SETS, kube.DEPLOYMENTS, kube.SERVICES):
        view.deliver(kind)(kube.SYNC, [])
    assert view.ready.is_set()


def test_preflight_report_names_the_binding() -> None:
    subject = preflight.Subject("system:serviceaccount:metrics:inference-metrics-adapter")
    missing = [p for p in preflight.PERMISSIONS if p.binding == preflight.AUTH_READER]
    text = preflight.report(missing, subject)
    assert "get configmaps kube-system/extension-apiserver-authentication" in text
    assert "kind: RoleBinding" in text and "namespace: kube-system" in text
    assert "name: extension-apiserver-authentication-reader" in text
    assert "--serviceaccount=metrics:inference-metrics-adapter" in text
