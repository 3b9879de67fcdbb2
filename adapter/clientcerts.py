"""Client certificates as Kubernetes reads them: verification, the user, standalone's x509 users.

- ``verify_client_certificate`` does what Go's ``x509.Verify`` with ``ExtKeyUsageClientAuth``
  does for kube-apiserver: signatures up to a trusted root, every validity period, the usages.
- ``user_from_certificate``: CN is the user name, each O a group. With several CNs in a subject,
  the last one counts, as in Go's ``pkix.Name`` (and so in kube-apiserver): a certificate is the
  same user to both.
- ``ClientCertificates`` judges the certificate of every standalone request again. The TLS
  handshake judged it when the connection, or the session it resumes, began: a resumed TLS
  session (1.2 or 1.3) or a keep-alive connection carries a certificate that may have expired
  since, or whose CA was rotated out of ``--client-ca-file``. (Cluster mode judges every request
  in ``adapter.kubeauth``, against the CAs of its ConfigMap.)

No aiohttp import; time comes from an injected clock.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapter.transport import (
    MAX_PRESENTED_INTERMEDIATES,
    ServingTls,
    User,
    with_authenticated_group,
)

logger = logging.getLogger(__name__)

MAX_CHAIN_DEPTH = MAX_PRESENTED_INTERMEDIATES + 1
"""Steps from a certificate to its root: through every intermediate a chain is read with."""
MAX_KEPT_VERDICTS = 1024
"""Certificates whose verification ``ClientCertificates`` remembers (the oldest go first)."""


class CertificateRejected(ValueError):
    """A client certificate that a CA bundle does not vouch for; the message says why."""


def load_ca_bundle(pem: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; ValueError if there is none."""
    certificates = x509.load_pem_x509_certificates(pem)
    if not certificates:
        raise ValueError("no certificate in the CA bundle")
    return certificates


def _valid_at(certificate: x509.Certificate, now: datetime.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def _allows_client_auth(certificate: x509.Certificate) -> bool:
    """Go's rule: no EKU extension means any usage; otherwise clientAuth or anyExtendedKeyUsage."""
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages or (
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages
    )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def common_name(certificate: x509.Certificate) -> str:
    """The CN of the subject as Go reads it: the last one when there are several; ``""``
    without one."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[-1].value) if names else ""


def verify_client_certificate(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    now: datetime.datetime,
) -> list[x509.Certificate]:
    """The chain from ``leaf`` to one of ``roots`` (both included), verified for client auth;
    raises ``CertificateRejected`` when there is none.

    Checks, like Go's ``x509.Verify`` with ``ExtKeyUsageClientAuth``: each signature up the chain
    (through presented CA ``intermediates``), every validity period, and the extended key usage of
    the leaf and intermediates.
    """
    if not _valid_at(leaf, now):
        raise CertificateRejected(
            f"the certificate of {common_name(leaf)!r} is valid from"
            f" {leaf.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to"
            f" {leaf.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}, not now"
        )
    if not _allows_client_auth(leaf):
        raise CertificateRejected(
            f"the certificate of {common_name(leaf)!r} lacks the clientAuth extended key usage"
        )
    current, used = leaf, [leaf]
    for _ in range(MAX_CHAIN_DEPTH):
        for root in roots:
            if _valid_at(root, now) and _issued_by(current, root):
                return [*used, root]
        step = next(
            (
                c
                for c in intermediates
                if c not in used
                and _is_ca(c)
                and _valid_at(c, now)
                and _allows_client_auth(c)
                and _issued_by(current, c)
            ),
            None,
        )
        if step is None:
            break
        current = step
        used.append(step)
    raise CertificateRejected(
        f"the certificate of {common_name(leaf)!r} (issuer {leaf.issuer.rfc4514_string()!r})"
        " is not signed by a trusted CA"
    )


def user_from_certificate(certificate: x509.Certificate) -> User | None:
    """The x509 user: CN is the name, each O a group; None without a CN."""
    name = common_name(certificate)
    if not name:
        return None
    groups = [
        str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]
    return with_authenticated_group(User(name, tuple(groups)))


class _Verdict(NamedTuple):
    """A certificate found good: its user, and when its whole chain is valid (Unix seconds)."""

    user: User
    valid_from: float
    valid_until: float


class ClientCertificates:
    """Standalone's x509 users: every request's client certificate judged against the clock and
    the current ``--client-ca-file`` (see the module docstring for why the handshake is not enough).

    A verdict is remembered per certificate (its DER bytes) with the period in which its whole
    chain is valid, so a request costs a lookup and two comparisons; a changed CA file drops
    them all. ``reload_if_changed`` reads the file again: a new CA is trusted by new handshakes
    at once (``ServingTls.trust_client_cas``), and requests count only the CAs the file holds
    now, since the handshake's trust store can only grow.
    """

    def __init__(
        self, ca_file: Path, tls: ServingTls, clock: Callable[[], float] = time.time
    ) -> None:
        self.ca_file = ca_file
        self._tls = tls
        self._clock = clock
        self._verdicts: dict[bytes, _Verdict] = {}
        self._refused: bytes | None = None
        pem = ca_file.read_bytes()
        self._use(pem, load_ca_bundle(pem))

    def _use(self, pem: bytes, roots: list[x509.Certificate]) -> None:
        self._tls.trust_client_cas([pem])
        self._roots = roots
        self._loaded = hashlib.sha256(pem).digest()
        self._verdicts.clear()

    def reload_if_changed(self) -> bool:
        """Read the CA file again; True when a new bundle is in use. One that does not parse is
        logged once and the old bundle stays."""
        try:
            pem = self.ca_file.read_bytes()
        except OSError as error:
            logger.warning("cannot read the client CA file: %s", error)
            return False
        digest = hashlib.sha256(pem).digest()
        if digest in (self._loaded, self._refused):
            return False
        try:
            roots = load_ca_bundle(pem)
        except ValueError as error:
            self._refused = digest
            logger.warning("keeping the old client CA: %s does not load: %s", self.ca_file, error)
            return False
        self._use(pem, roots)
        logger.info("reloaded the client CA from %s", self.ca_file)
        return True

    def user(self, ssl_object: ssl.SSLObject | None) -> User | None:
        """The user the request's client certificate names; None without a certificate.

        Raises ``CertificateRejected`` for one that is not valid now, not signed by a CA of the
        current file, or without a common name.
        """
        leaf = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not leaf:
            return None
        now = self._clock()
        verdict = self._verdicts.get(leaf)
        if verdict is not None and verdict.valid_from <= now <= verdict.valid_until:
            return verdict.user
        self._verdicts.pop(leaf, None)
        verdict = self._verify(self._tls.presented_chain(ssl_object), now)
        if len(self._verdicts) >= MAX_KEPT_VERDICTS:
            del self._verdicts[next(iter(self._verdicts))]
        self._verdicts[leaf] = verdict
        return verdict.user

    def _verify(self, chain_der: Sequence[bytes], now: float) -> _Verdict:
        try:
            chain = [x509.load_der_x509_certificate(der) for der in chain_der]
        except ValueError as error:
            raise CertificateRejected("the client certificate does not parse") from error
        moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
        verified = verify_client_certificate(chain[0], chain[1:], self._roots, moment)
        user = user_from_certificate(chain[0])
        if user is None:
            raise CertificateRejected("the client certificate has no common name")
        return _Verdict(
            user,
            max(c.not_valid_before_utc for c in verified).timestamp(),
            min(c.not_valid_after_utc for c in verified).timestamp(),
        )
