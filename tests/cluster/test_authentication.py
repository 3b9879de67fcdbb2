"""Who the adapter believes a caller is, end to end over TLS against the kube-apiserver double."""

from __future__ import annotations

import json
import logging

import pytest

from tests.cluster.conftest import CUSTOM, ClusterAdapter, client_context
from tests.kubeapi import Identity
from tests.rawhttp import RawHttp, Request


async def test_front_proxy_user_is_taken_from_the_headers(cluster: ClusterAdapter) -> None:
    cluster.kubeapi.grant("alice")
    status, body = await cluster.get(
        "proxy",
        CUSTOM,
        headers=[
            ("X-Remote-User", "alice"),
            ("X-Remote-Group", "ml-team"),
            ("X-Remote-Group", "ops"),
            ("X-Remote-Uid", "u-1"),
            ("X-Remote-Extra-Scopes", "view"),
            ("X-Remote-Extra-Acme.com%2Fproject", "x"),
        ],
    )
    assert status == 200, body
    spec = cluster.kubeapi.access_reviews[-1]
    assert spec["user"] == "alice"
    assert spec["uid"] == "u-1"
    assert spec["groups"] == ["ml-team", "ops", "system:authenticated"]
    assert spec["extra"] == {"acme.com/project": ["x"], "scopes": ["view"]}
    assert spec["nonResourceAttributes"] == {"path": CUSTOM, "verb": "get"}


async def test_forged_remote_user_without_the_proxy_certificate_is_ignored(
    cluster: ClusterAdapter,
) -> None:
    cluster.kubeapi.grant("admin", "system:masters")
    status, body = await cluster.get(
        "anonymous",
        f"{CUSTOM}/namespaces/ml/pods/*/inference_queue_depth",
        headers={"X-Remote-User": "admin", "X-Remote-Group": "system:masters"},
    )
    assert status == 403, body
    assert body["kind"] == "Status" and body["reason"] == "Forbidden"
    assert 'User "system:anonymous" cannot get resource' in body["message"]
    spec = cluster.kubeapi.access_reviews[-1]
    assert spec["user"] == "system:anonymous"
    assert spec["groups"] == ["system:unauthenticated"]


async def test_remote_headers_next_to_a_user_certificate_are_ignored(
    cluster: ClusterAdapter,
) -> None:
    cluster.kubeapi.grant("carol")
    status, body = await cluster.get(
        "carol", CUSTOM, headers={"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}
    )
    assert status == 200, body
    spec = cluster.kubeapi.access_reviews[-1]
    assert (spec["user"], spec["groups"]) == ("carol", ["devs", "system:authenticated"])


async def test_proxy_certificate_with_a_cn_outside_the_allowed_names_is_refused(
    cluster: ClusterAdapter,
) -> None:
    cluster.kubeapi.grant("alice", "system:anonymous", "system:unauthenticated")
    status, body = await cluster.as_user("alice", CUSTOM, who="rogue")
    assert status == 401, body
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
    assert "'evil-proxy' is not one of requestheader-allowed-names" in body["message"]
    assert cluster.kubeapi.access_reviews == []


async def test_a_proxy_request_without_a_user_header_is_refused(cluster: ClusterAdapter) -> None:
    status, body = await cluster.get("proxy", CUSTOM)
    assert status == 401, body
    assert "named no user" in body["message"]


async def test_bearer_tokens_go_to_token_review_and_are_cached(cluster: ClusterAdapter) -> None:
    api = cluster.kubeapi
    api.add_token("dave-token", Identity("dave", ["qa"], "uid-dave"))
    api.grant("dave")
    headers = {"Authorization": "Bearer dave-token"}
    for _ in range(3):
        status, body = await cluster.get("anonymous", CUSTOM, headers=headers)
        assert status == 200, body
    assert len(api.token_reviews) == 1
    assert api.token_reviews[0] == {"token": "dave-token"}
    spec = api.access_reviews[-1]
    assert (spec["user"], spec["uid"], spec["groups"]) == (
        "dave",
        "uid-dave",
        ["qa", "system:authenticated"],
    )
    cluster.review_clock.advance(11)
    await cluster.get("anonymous", CUSTOM, headers=headers)
    assert len(api.token_reviews) == 2


async def test_an_invalid_bearer_token_is_401_not_anonymous(cluster: ClusterAdapter) -> None:
    cluster.kubeapi.grant("system:anonymous")
    status, body = await cluster.get(
        "anonymous", CUSTOM, headers={"Authorization": "Bearer forged"}
    )
    assert status == 401, body
    assert "the bearer token is not valid: invalid bearer token" in body["message"]


@pytest.mark.parametrize("path", [CUSTOM, "/push/v1"])
async def test_a_bearer_token_that_is_not_utf8_is_401_not_500(
    cluster: ClusterAdapter, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    cluster.kubeapi.grant("system:anonymous")
    client = RawHttp(int(cluster.url.rsplit(":", 1)[1]), client_context(cluster.pki))
    # RawHttp writes headers as latin-1: these two characters go out as the bytes ff fe.
    headers = {"Authorization": "Bearer token\xff\xfe", "Content-Type": "application/json"}
    request = (
        Request("POST", path, headers, b"{}")
        if path == "/push/v1"
        else Request("GET", path, headers)
    )
    status, _, body = await client.exchange(request)
    await client.close()
    assert status == 401, body
    assert "not UTF-8" in json.loads(body)["message"]
    assert not cluster.kubeapi.token_reviews
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_system_masters_skips_the_review(cluster: ClusterAdapter) -> None:
    status, body = await cluster.as_user(
        "system:kube-aggregator", CUSTOM, groups=("system:masters",)
    )
    assert status == 200, body
    assert cluster.kubeapi.access_reviews == []


async def test_health_is_open_and_everything_else_is_reviewed(cluster: ClusterAdapter) -> None:
    cluster.store_clock.advance(cluster.state.config.warm_up_seconds)  # /readyz: past the warm-up
    for path in ("/healthz", "/livez", "/readyz"):
        async with cluster.session("anonymous").get(f"{cluster.url}{path}") as response:
            assert response.status == 200
    assert cluster.kubeapi.access_reviews == []
    status, body = await cluster.get("anonymous", "/metrics")
    assert status == 403
    assert body["message"] == 'forbidden: User "system:anonymous" cannot get path "/metrics"'
