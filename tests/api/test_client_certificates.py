"""Standalone client certificates judged on every request, over real TLS handshakes: a resumed
session or a kept connection is no way around expiry or a CA rotation, and a subject with two
CNs names the user Go would name."""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from adapter import certs
from tests.api.conftest import RunningAdapter, serve_adapter
from tests.cluster.pki import Issued, issue, make_ca
from tests.conftest import Pki
from tests.rawhttp import RawHttp, Request, get_in_session

DISCOVERY = "/apis/custom.metrics.k8s.io/v1beta2"
VERSIONS = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)


def standalone_ca(pki: Pki) -> Issued:
    """The CA the adapter generated (``--cert-dir``), to issue odd client certificates from."""
    pair = certs.load_or_make_ca(pki.directory, datetime.datetime.now(datetime.UTC))
    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    assert isinstance(key, certs.ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    return Issued(cert, key, pki.ca_cert, pki.directory / certs.CA_KEY_FILE)


def presenting(pki: Pki, cert: Issued, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


def port_of(server: RunningAdapter) -> int:
    return int(server.url.rsplit(":", 1)[1])


async def test_an_expired_certificate_is_refused_on_resumed_sessions_and_kept_connections(
    pki: Pki, tmp_path: Path
) -> None:
    async with serve_adapter(pki) as server:
        port = port_of(server)
        # Valid for another one to two seconds (certificate times are whole seconds).
        expiry = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        expiry += datetime.timedelta(seconds=2)
        short = issue(standalone_ca(pki), tmp_path, "short", "shorty", valid_until=expiry)
        contexts = {version: presenting(pki, short, version) for version in VERSIONS}
        sessions = {}
        for version, context in contexts.items():
            answer = await asyncio.to_thread(get_in_session, port, context, DISCOVERY)
            assert answer.status == 200, answer.body
            sessions[version] = answer.session
        kept = RawHttp(port, presenting(pki, short))
        assert (await kept.exchange(Request("GET", DISCOVERY, {})))[0] == 200

        await asyncio.sleep(expiry.timestamp() - time.time() + 0.1)
        for version, context in contexts.items():
            answer = await asyncio.to_thread(
                get_in_session, port, context, DISCOVERY, sessions[version]
            )
            assert answer.resumed, f"{version.name}: no resumption, so nothing was shown"
            assert answer.status == 401, f"{version.name}: {answer.body}"
            assert "not now" in answer.body["message"]
        status, _, body = await kept.exchange(Request("GET", DISCOVERY, {}))
        await kept.close()
        assert status == 401, body


async def test_a_ca_rotated_out_of_the_client_ca_file_no_longer_counts(
    pki: Pki, tmp_path: Path
) -> None:
    ca_file = tmp_path / "client-ca.crt"
    ca_file.write_bytes(pki.ca_cert.read_bytes())
    async with serve_adapter(pki, client_ca_file=ca_file) as server:
        port = port_of(server)
        old_context = pki.client_context()
        old_context.minimum_version = ssl.TLSVersion.TLSv1_3
        answer = await asyncio.to_thread(get_in_session, port, old_context, DISCOVERY)
        assert answer.status == 200
        kept = RawHttp(port, pki.client_context())
        assert (await kept.exchange(Request("GET", DISCOVERY, {})))[0] == 200

        new_ca = make_ca(tmp_path, "new-ca", "rotated-client-ca")
        ca_file.write_bytes(new_ca.pem)
        deadline = time.monotonic() + 10  # the file is checked once a second
        while (status := (await kept.exchange(Request("GET", DISCOVERY, {})))[0]) == 200:
            assert time.monotonic() < deadline, "the rotated CA file was not read again"
            await asyncio.sleep(0.1)
        await kept.close()
        assert status == 401
        resumed = await asyncio.to_thread(
            get_in_session, port, old_context, DISCOVERY, answer.session
        )
        assert resumed.resumed
        assert resumed.status == 401
        assert "not signed by a trusted CA" in resumed.body["message"]
        bob = issue(new_ca, tmp_path, "bob", "bob")
        fresh = await asyncio.to_thread(get_in_session, port, presenting(pki, bob), DISCOVERY)
        assert fresh.status == 200, fresh.body


async def test_of_two_common_names_the_last_is_the_user_as_in_go(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapter.access")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "first"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "team"),
            x509.NameAttribute(NameOID.COMMON_NAME, "second"),
        ]
    )
    two_names = issue(standalone_ca(pki), tmp_path, "two", "", subject=subject)
    async with serve_adapter(pki) as server:
        answer = await asyncio.to_thread(
            get_in_session, port_of(server), presenting(pki, two_names), DISCOVERY
        )
    assert answer.status == 200
    users = [r.getMessage().rsplit(" ", 1)[1] for r in caplog.records if r.name == "adapter.access"]
    assert users == ["second"]


@pytest.mark.parametrize(
    "comment", [b"# Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale\n", b"# Soci\xe9t\xe9\n"]
)
async def test_a_ca_file_with_text_beyond_ascii_is_read_and_reloaded(
    pki: Pki, tmp_path: Path, comment: bytes
) -> None:
    """CA bundles carry comments (``# Issuer: ...``), in UTF-8 or Latin-1: a certificate
    reader skips them, and so must the adapter, at start-up and on every reload after."""
    ca_file = tmp_path / "client-ca.crt"
    ca_file.write_bytes(comment + pki.ca_cert.read_bytes())
    async with serve_adapter(pki, client_ca_file=ca_file) as server:
        port = port_of(server)
        answer = await asyncio.to_thread(get_in_session, port, pki.client_context(), DISCOVERY)
        assert answer.status == 200, answer.body

        new_ca = make_ca(tmp_path, "new-ca", "rotated-client-ca")
        ca_file.write_bytes(comment + new_ca.pem)
        bob = presenting(pki, issue(new_ca, tmp_path, "bob", "bob"))
        deadline = time.monotonic() + 10  # the file is checked once a second
        while True:
            try:
                answer = await asyncio.to_thread(get_in_session, port, bob, DISCOVERY)
            except (ssl.SSLError, ConnectionError):  # the new CA is not trusted yet
                answer = None
            if answer is not None and answer.status == 200:
                break
            assert time.monotonic() < deadline, "the rotated CA file was not read again"
            await asyncio.sleep(0.1)
        old = await asyncio.to_thread(get_in_session, port, pki.client_context(), DISCOVERY)
        assert old.status == 401, old.body


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_chain_through_an_intermediate_ca_verifies_on_a_resumed_session(
    pki: Pki, tmp_path: Path, version: ssl.TLSVersion
) -> None:
    """A session resumed from a ticket holds the client's certificate but not the
    intermediates it came with (OpenSSL keeps none in a ticket); those of its first handshake
    still count when the certificate is judged again (here: the CA file changed)."""
    root = make_ca(tmp_path, "root", "root-ca")
    intermediate = issue(root, tmp_path, "intermediate", "intermediate-ca", is_ca=True)
    leaf = issue(intermediate, tmp_path, "leaf", "leafy")
    chain = tmp_path / "chain.crt"
    chain.write_bytes(leaf.pem + intermediate.pem)
    ca_file = tmp_path / "client-ca.crt"
    ca_file.write_bytes(root.pem)
    async with serve_adapter(pki, client_ca_file=ca_file) as server:
        port = port_of(server)
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(chain), str(leaf.key_file))
        context.minimum_version = context.maximum_version = version
        first = await asyncio.to_thread(get_in_session, port, context, DISCOVERY)
        assert first.status == 200, first.body

        ca_file.write_bytes(root.pem + make_ca(tmp_path, "other", "other-ca").pem)
        server.state.client_certificates.reload_if_changed()  # unless the reloader just did
        resumed = await asyncio.to_thread(get_in_session, port, context, DISCOVERY, first.session)
        assert resumed.resumed, f"{version.name}: no resumption, so nothing was shown"
        assert resumed.status == 200, resumed.body
