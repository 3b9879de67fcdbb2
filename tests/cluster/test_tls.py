"""Real TLS handshakes: the aggregator's front-proxy certificate, chains, and CA rotation
through the ConfigMap without a restart."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import time
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapter import clientcerts, transport
from tests.cluster.conftest import CUSTOM, ClusterAdapter, client_context, eventually
from tests.cluster.pki import Issued, issue, make_ca
from tests.rawhttp import get_in_session


async def get_as(
    cluster: ClusterAdapter, context: ssl.SSLContext, user: str = "alice"
) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.get(f"{cluster.url}{CUSTOM}", headers={"X-Remote-User": user}) as response,
    ):
        return response.status, await response.json(content_type=None)


def presenting(cluster: ClusterAdapter, cert: Issued, chain_file: Path | None = None):
    context = client_context(cluster.pki)
    context.load_cert_chain(str(chain_file or cert.cert_file), str(cert.key_file))
    return context


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_aggregator_style_front_proxy_certificate(
    cluster: ClusterAdapter, version: ssl.TLSVersion
) -> None:
    """RSA-2048 front-proxy-client certificate with clientAuth, as kubeadm issues it."""
    cluster.kubeapi.grant("alice")
    context = presenting(cluster, cluster.cluster_pki.front_proxy)
    context.minimum_version = context.maximum_version = version
    status, body = await get_as(cluster, context)
    assert status == 200, body
    assert cluster.kubeapi.access_reviews[-1]["user"] == "alice"


async def test_a_chain_through_an_intermediate_ca_is_verified(
    cluster: ClusterAdapter, tmp_path: Path
) -> None:
    root = cluster.cluster_pki.front_proxy_ca
    intermediate = issue(root, tmp_path, "intermediate", "front-proxy-intermediate", is_ca=True)
    leaf = issue(intermediate, tmp_path, "leaf", "front-proxy-client")
    chain = tmp_path / "chain.crt"
    chain.write_bytes(leaf.pem + intermediate.pem)
    cluster.kubeapi.grant("alice")
    status, body = await get_as(cluster, presenting(cluster, leaf, chain))
    assert status == 200, body["message"]


async def test_a_certificate_for_servers_only_is_not_a_proxy(
    cluster: ClusterAdapter, tmp_path: Path
) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    root = cluster.cluster_pki.front_proxy_ca
    server_only = issue(
        root, tmp_path, "srv", "front-proxy-client", usage=ExtendedKeyUsageOID.SERVER_AUTH
    )
    with pytest.raises(aiohttp.ClientError):  # OpenSSL already refuses it in the handshake
        await get_as(cluster, presenting(cluster, server_only))


async def test_a_rotated_front_proxy_ca_is_accepted_without_restart(
    cluster: ClusterAdapter, tmp_path: Path
) -> None:
    api, cluster_pki = cluster.kubeapi, cluster.cluster_pki
    api.grant("alice")
    new_ca = make_ca(tmp_path, "front-proxy-ca-2", "front-proxy-ca-2", rsa_key=True)
    new_proxy = issue(new_ca, tmp_path, "fp2", "front-proxy-client", rsa_key=True)
    with pytest.raises(aiohttp.ClientError):  # not trusted yet: the handshake fails
        await get_as(cluster, presenting(cluster, new_proxy))

    authenticator = cluster.mode.authenticator
    api.set_configmap(
        cluster_pki.configmap(**{"requestheader-client-ca-file": new_ca.pem.decode()})
    )
    await eventually(
        lambda: (
            authenticator.source.request_header is not None
            and authenticator.source.request_header.ca_pem == new_ca.pem
        )
    )
    status, body = await get_as(cluster, presenting(cluster, new_proxy))
    assert status == 200, body
    # The old CA still passes the handshake (the verify store only grows), but the adapter
    # no longer trusts what it signs.
    status, body = await get_as(cluster, presenting(cluster, cluster_pki.front_proxy))
    assert status == 401, body
    assert "not signed by a trusted CA" in body["message"]


async def test_allowed_names_follow_the_configmap(cluster: ClusterAdapter) -> None:
    api, cluster_pki = cluster.kubeapi, cluster.cluster_pki
    api.grant("alice")
    rogue = presenting(cluster, cluster_pki.rogue_proxy)
    assert (await get_as(cluster, rogue))[0] == 401
    api.set_configmap(cluster_pki.configmap(**{"requestheader-allowed-names": "[]"}))
    await eventually(
        lambda: (
            cluster.mode.authenticator.source.request_header is not None
            and cluster.mode.authenticator.source.request_header.allowed_names == ()
        )
    )
    status, body = await get_as(cluster, presenting(cluster, cluster_pki.rogue_proxy))
    assert status == 200, body


@pytest.mark.parametrize(
    ("names", "status"),
    [(("front-proxy-client", "evil-proxy"), 401), (("evil-proxy", "front-proxy-client"), 200)],
)
async def test_of_two_common_names_the_last_is_the_proxys_as_in_go(
    cluster: ClusterAdapter, tmp_path: Path, names: tuple[str, str], status: int
) -> None:
    """kube-apiserver (Go's ``pkix.Name``) reads the last CN; so must the allowed-names check."""
    cluster.kubeapi.grant("alice")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name) for name in names])
    proxy = issue(cluster.cluster_pki.front_proxy_ca, tmp_path, "two", "", subject=subject)
    answer, body = await get_as(cluster, presenting(cluster, proxy))
    assert answer == status, body


async def test_an_expired_client_certificate_is_refused_on_a_resumed_session(
    cluster: ClusterAdapter, tmp_path: Path
) -> None:
    """Cluster mode judges the certificate on every request, so a TLS session resumed after
    the certificate expired (1.2 and 1.3) is no way around it."""
    cluster.kubeapi.grant("shorty")
    port = int(cluster.url.rsplit(":", 1)[1])
    expiry = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    expiry += datetime.timedelta(seconds=2)  # valid for another one to two seconds
    short = issue(cluster.cluster_pki.client_ca, tmp_path, "short", "shorty", valid_until=expiry)
    contexts = {}
    sessions = {}
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        contexts[version] = presenting(cluster, short)
        contexts[version].minimum_version = contexts[version].maximum_version = version
        answer = await asyncio.to_thread(get_in_session, port, contexts[version], CUSTOM)
        assert answer.status == 200, answer.body
        sessions[version] = answer.session
    await asyncio.sleep(expiry.timestamp() - time.time() + 0.1)
    for version, context in contexts.items():
        answer = await asyncio.to_thread(get_in_session, port, context, CUSTOM, sessions[version])
        assert answer.resumed, f"{version.name}: no resumption, so nothing was shown"
        assert answer.status == 401, f"{version.name}: {answer.body}"
        assert "not now" in answer.body["message"]


async def test_a_ca_bundle_with_text_beyond_ascii_is_taken_from_the_configmap(
    cluster: ClusterAdapter, tmp_path: Path
) -> None:
    """kube-apiserver copies its CA files into the ConfigMap as they are, comments and all."""
    api, cluster_pki = cluster.kubeapi, cluster.cluster_pki
    api.grant("dave")
    new_ca = make_ca(tmp_path, "client-ca-2", "kubernetes-2")
    bundle = f"# Société Générale\n{new_ca.pem.decode()}"
    api.set_configmap(cluster_pki.configmap(**{"client-ca-file": bundle}))
    authenticator = cluster.mode.authenticator
    await eventually(lambda: authenticator.source.client_ca_pem == bundle.encode())
    dave = presenting(cluster, issue(new_ca, tmp_path, "dave", "dave"))
    status, body = await get_as(cluster, dave, user="")
    assert status == 200, body
    assert cluster.kubeapi.access_reviews[-1]["user"] == "dave"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_a_chain_through_an_intermediate_ca_verifies_on_a_resumed_session(
    cluster: ClusterAdapter, tmp_path: Path, version: ssl.TLSVersion
) -> None:
    """Every request is judged, and a session resumed from a ticket holds no intermediates
    (OpenSSL keeps none in a ticket): those of its first handshake still count."""
    intermediate = issue(
        cluster.cluster_pki.client_ca, tmp_path, "intermediate", "client-intermediate", is_ca=True
    )
    leaf = issue(intermediate, tmp_path, "leaf", "dave")
    chain = tmp_path / "chain.crt"
    chain.write_bytes(leaf.pem + intermediate.pem)
    cluster.kubeapi.grant("dave")
    context = presenting(cluster, leaf, chain)
    context.minimum_version = context.maximum_version = version
    port = int(cluster.url.rsplit(":", 1)[1])
    first = await asyncio.to_thread(get_in_session, port, context, CUSTOM)
    assert first.status == 200, first.body
    resumed = await asyncio.to_thread(get_in_session, port, context, CUSTOM, first.session)
    assert resumed.resumed, f"{version.name}: no resumption, so nothing was shown"
    assert resumed.status == 200, resumed.body


def bogus_cas(impersonated: x509.Certificate, count: int) -> bytes:
    """``count`` CA certificates named as ``impersonated`` is, each with a key of its own."""
    now = datetime.datetime.now(datetime.UTC)
    pems = []
    for serial in range(1, count + 1):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(impersonated.subject)
            .issuer_name(impersonated.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        pems.append(cert.public_bytes(serialization.Encoding.PEM))
    return b"".join(pems)


async def test_bogus_intermediates_cost_a_request_a_few_signature_checks(
    cluster: ClusterAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client may send any certificates after its own, and the handshake ignores those it
    does not need; each one named like the issuer would cost a signature check on every
    request (cluster mode judges every request), a core's worth with a hundred of them."""
    checks = []
    issued_by = clientcerts._issued_by
    monkeypatch.setattr(
        clientcerts, "_issued_by", lambda *pair: checks.append(pair) or issued_by(*pair)
    )
    cluster.kubeapi.grant("carol")
    chain = tmp_path / "chain.crt"
    chain.write_bytes(
        cluster.cluster_pki.carol.pem + bogus_cas(cluster.cluster_pki.client_ca.cert, 100)
    )
    status, body = await get_as(cluster, presenting(cluster, cluster.cluster_pki.carol, chain))
    assert status == 200, body
    assert len(checks) <= 2 * (1 + transport.MAX_PRESENTED_INTERMEDIATES), len(checks)
