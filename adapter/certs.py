"""Certificates for standalone mode: a private CA, the serving certificate, client certificates.

The CA signs the serving certificate (SANs: localhost, 127.0.0.1, ::1 and the in-cluster names
``<service>.<namespace>.svc``, which the aggregator dials, and ``<service>-push.<namespace>.svc``,
the headless Service that model pods push to every replica through) and the client
certificates that ``kubectl`` and the HPA emulation present. Keys are ECDSA P-256: small, fast
to handshake, accepted by Go and OpenSSL clients.

The ``make_*`` functions are pure (PEM in, PEM out); ``ensure_serving_files`` and
``write_client_files`` are the only ones that touch the disk.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)
"""A reused serving certificate closer than this to expiry is issued anew at start-up."""

CA_CERT_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"
SERVING_CERT_FILE = "apiserver.crt"
SERVING_KEY_FILE = "apiserver.key"


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class ServingFiles:
    """Where the serving material lives on disk."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path


PUSH_SERVICE_SUFFIX = "-push"
"""The headless Service for pushes is named after the adapter's Service with this suffix."""


def push_service_name(service: str) -> str:
    """The headless Service whose name resolves to every replica: ``<service>-push``."""
    return service + PUSH_SERVICE_SUFFIX


def serving_hostnames(service: str, namespace: str) -> list[str]:
    """The names a serving certificate must cover: locally, behind the aggregator, and for the
    pods that push to each replica through the headless Service (verified against its name,
    whichever replica's address they connect to)."""
    return [
        "localhost",
        "127.0.0.1",
        "::1",
        f"{service}.{namespace}.svc",
        f"{push_service_name(service)}.{namespace}.svc",
    ]


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: list[str] | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations or []]
    return x509.Name(attributes)


def _san(hostname: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        return x509.DNSName(hostname)


def make_ca(common_name: str, now: datetime.datetime) -> KeyPair:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = _new_key()
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _make_leaf(
    ca: KeyPair,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    now: datetime.datetime,
    hostnames: list[str] | None = None,
) -> KeyPair:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be an ECDSA key made by this tool")
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LEAF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if hostnames:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_san(h) for h in hostnames]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_serving_cert(ca: KeyPair, hostnames: list[str], now: datetime.datetime) -> KeyPair:
    """A server certificate for ``hostnames`` (DNS names or IP addresses), signed by ``ca``."""
    return _make_leaf(ca, _name(hostnames[0]), ExtendedKeyUsageOID.SERVER_AUTH, now, hostnames)


def make_client_cert(ca: KeyPair, user: str, groups: list[str], now: datetime.datetime) -> KeyPair:
    """A client certificate as Kubernetes reads one: CN is the user, each O a group."""
    return _make_leaf(ca, _name(user, groups), ExtendedKeyUsageOID.CLIENT_AUTH, now)


def covers(cert_pem: bytes, hostnames: list[str], now: datetime.datetime) -> bool:
    """Whether a certificate names every host and stays valid for longer than RENEW_BEFORE."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    present |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return {str(_san(h).value) for h in hostnames} <= present


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600, so a reader never sees half a key."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def load_or_make_ca(cert_dir: Path, now: datetime.datetime) -> KeyPair:
    """The CA in ``cert_dir``, made on first use."""
    cert_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = cert_dir / CA_CERT_FILE, cert_dir / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        return KeyPair(cert_path.read_bytes(), key_path.read_bytes())
    ca = make_ca("inference-metrics-adapter-ca", now)
    _write_private(key_path, ca.key_pem)
    _write_private(cert_path, ca.cert_pem)
    logger.info("generated a CA in %s", cert_path)
    return ca


def ensure_serving_files(
    cert_dir: Path, hostnames: list[str], now: datetime.datetime
) -> ServingFiles:
    """Reuse the CA and serving certificate in ``cert_dir``, or make what is missing or stale."""
    ca = load_or_make_ca(cert_dir, now)
    files = ServingFiles(
        cert_dir / CA_CERT_FILE,
        cert_dir / CA_KEY_FILE,
        cert_dir / SERVING_CERT_FILE,
        cert_dir / SERVING_KEY_FILE,
    )
    if (
        files.cert.exists()
        and files.key.exists()
        and covers(files.cert.read_bytes(), hostnames, now)
    ):
        return files
    serving = make_serving_cert(ca, hostnames, now)
    _write_private(files.key, serving.key_pem)
    _write_private(files.cert, serving.cert_pem)
    logger.info("generated a serving certificate for %s in %s", ", ".join(hostnames), files.cert)
    return files


def write_client_files(
    cert_dir: Path, out_dir: Path, user: str, groups: list[str], now: datetime.datetime
) -> tuple[Path, Path]:
    """Issue a client certificate from the CA in ``cert_dir``; returns (cert path, key path)."""
    ca = load_or_make_ca(cert_dir, now)
    pair = make_client_cert(ca, user, groups, now)
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / f"{user}.crt", out_dir / f"{user}.key"
    _write_private(key_path, pair.key_pem)
    _write_private(cert_path, pair.cert_pem)
    return cert_path, key_path


def write_overlay_files(files: ServingFiles, overlay_dir: Path) -> list[Path]:
    """Copy the serving material into a kustomize overlay: ``tls/{ca.crt,tls.crt,tls.key}`` for
    the Secret generator and ``cabundle-patch.yaml``, a JSON patch setting every APIService's
    ``caBundle`` to the CA. The CA key stays where it is."""
    tls = overlay_dir / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    ca_pem = files.ca_cert.read_bytes()
    (tls / "ca.crt").write_bytes(ca_pem)
    (tls / "tls.crt").write_bytes(files.cert.read_bytes())
    _write_private(tls / "tls.key", files.key.read_bytes())
    bundle = base64.b64encode(ca_pem).decode()
    patch = overlay_dir / "cabundle-patch.yaml"
    patch.write_text(
        "# Written by `inference-adapter certs serving`: the CA of the serving certificate.\n"
        f'- op: add\n  path: /spec/caBundle\n  value: "{bundle}"\n'
    )
    return [tls / "ca.crt", tls / "tls.crt", tls / "tls.key", patch]
