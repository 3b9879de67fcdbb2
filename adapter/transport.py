"""TLS and authentication: who is on the other end of a request.

- ``ServingTls`` owns the server's ``ssl.SSLContext`` (TLS >= 1.2, client certificates requested
  and verified against the client CA when presented) and re-reads the certificate files when they
  change on disk: ``load_cert_chain`` on the live context, so every new handshake gets the new
  certificate while established connections keep theirs. A new pair is first loaded into a
  scratch context, from the same bytes, because a ``load_cert_chain`` that fails half-way (a new
  certificate next to the old key, when the files are replaced one after the other) leaves the
  context without a usable key and every handshake failing until the next good pair.
- ``bearer_token`` reads an ``Authorization`` header as kube-apiserver does (the scheme in any
  case); ``PushToken`` checks the shared push bearer token in constant time.
- ``ServingTls.presented_chain`` reads the certificates a client presented, for
  ``adapter.clientcerts`` (standalone) and ``adapter.kubeauth`` (cluster mode) to judge on
  every request, resumed TLS sessions included (see its docstring).

CA rotation (cluster mode): Python's ``ssl`` cannot request a client certificate without
verifying it during the handshake, so the server context must trust every CA that may sign one.
``ServingTls.trust_client_cas`` adds CAs to the live context's verify store (new handshakes accept
them at once; nothing restarts). The store only grows; that is safe because the handshake is not
the decision: ``adapter.kubeauth`` verifies the presented certificate against the *current* CA set
and refuses one from a CA that was rotated out.

No aiohttp import: the middlewares in ``adapter.app`` call these.
"""

from __future__ import annotations

import _ssl
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

logger = logging.getLogger(__name__)

AUTHENTICATED_GROUP = "system:authenticated"


@dataclass(frozen=True)
class User:
    """An authenticated caller (``user.Info``)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)


def with_authenticated_group(user: User) -> User:
    """``user`` with ``system:authenticated`` among its groups (once)."""
    if AUTHENTICATED_GROUP in user.groups:
        return user
    return User(user.name, (*user.groups, AUTHENTICATED_GROUP), user.uid, user.extra)


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    """A path that reads ``data``, for OpenSSL, which loads keys from files only.

    An anonymous in-memory file where Linux offers one (nothing on disk, works on a read-only
    root filesystem), else a private temporary file.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("serving-tls", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(fd), "wb") as file:
                file.write(data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "pem"
        path.touch(mode=0o600)
        path.write_bytes(data)
        yield str(path)


def _load_pair(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    with _memory_file(cert_pem) as cert_path, _memory_file(key_pem) as key_path:
        context.load_cert_chain(cert_path, key_path)


_ENCODING_DER = getattr(ssl, "ENCODING_DER", getattr(_ssl, "ENCODING_DER", 2))
"""``_ssl.Certificate.public_bytes`` format for DER (public in ``ssl`` only from 3.13)."""


MAX_PRESENTED_INTERMEDIATES = 4
"""Certificates after its own that a client's chain is read with; the rest are not looked at."""


def peer_chain_der(ssl_object: ssl.SSLObject | None) -> list[bytes]:
    """The certificates the client presented, leaf first (DER), at most
    ``MAX_PRESENTED_INTERMEDIATES`` after the leaf; empty without one.

    The leaf comes from ``getpeercert(binary_form=True)``; the intermediates the client sent come
    from the unverified chain where this Python offers it (3.13 publicly, earlier privately), so
    a chain through an intermediate CA can be verified too. The handshake ignores presented
    certificates it does not need, so a client may send a hundred CA certificates named like its
    issuer: verifying every request (cluster mode) would check each one's signature, a core's
    worth of work for a few requests a second. A real chain has one or two intermediates.
    """
    if ssl_object is None:
        return []
    leaf = ssl_object.getpeercert(binary_form=True)
    if not leaf:
        return []
    chain = [leaf]
    native = getattr(ssl_object, "_sslobj", ssl_object)
    get_chain = getattr(native, "get_unverified_chain", None)
    if get_chain is not None:
        try:
            presented = [c.public_bytes(_ENCODING_DER) for c in get_chain() or []]
            # Server side, OpenSSL may or may not list the leaf itself (3.13 adds it).
            chain += [der for der in presented if der != leaf][:MAX_PRESENTED_INTERMEDIATES]
        except (ssl.SSLError, AttributeError, ValueError):
            pass
    return chain


MAX_REMEMBERED_CHAINS = 1024
"""Client certificates whose intermediates ``ServingTls.presented_chain`` remembers."""


class ServingTls:
    """The server's TLS context, with the serving certificate re-read when its files change.

    ``client_ca_file`` may be None in cluster mode, where the CAs come from the ConfigMap through
    ``trust_client_cas``.
    """

    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path | None) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(["http/1.1"])
        self.context.verify_mode = ssl.CERT_OPTIONAL
        self._trusted: set[str] = set()
        if client_ca_file is not None:
            self.context.load_verify_locations(cafile=str(client_ca_file))
        cert_pem, key_pem = self._read_pair()
        _load_pair(self.context, cert_pem, key_pem)
        self._loaded = _digest(cert_pem, key_pem)
        self._refused: bytes | None = None
        self._intermediates: dict[bytes, tuple[bytes, ...]] = {}

    def _read_pair(self) -> tuple[bytes, bytes]:
        return self.cert_file.read_bytes(), self.key_file.read_bytes()

    def trust_client_cas(self, pem_bundles: Iterable[bytes]) -> int:
        """Accept client certificates from these CAs in new handshakes; returns how many
        bundles were new. Bundles already loaded are skipped (see the module docstring).

        Each bundle's certificates reach OpenSSL as DER, as ``cryptography`` reads them (a
        bundle without one is a ValueError): OpenSSL takes PEM text only in ASCII, and the
        text between certificates may be anything (comments in UTF-8 or Latin-1, which
        kube-apiserver copies into its ConfigMap as they are in its CA file)."""
        added = 0
        for pem in pem_bundles:
            digest = hashlib.sha256(pem).hexdigest()
            if digest in self._trusted:
                continue
            certificates = x509.load_pem_x509_certificates(pem)
            der = b"".join(c.public_bytes(serialization.Encoding.DER) for c in certificates)
            self.context.load_verify_locations(cadata=der)
            self._trusted.add(digest)
            added += 1
        return added

    def presented_chain(self, ssl_object: ssl.SSLObject | None) -> list[bytes]:
        """The certificates the client of ``ssl_object`` presented, leaf first (DER); empty
        without one.

        A session resumed from a ticket (TLS 1.3, and 1.2 with tickets) holds the client's
        certificate but not the intermediates it came with: OpenSSL keeps no chain in a
        ticket, so a certificate issued by an intermediate CA would no longer verify on such
        a session. The intermediates each certificate (verified by the handshake) came with
        are remembered here, for the last ``MAX_REMEMBERED_CHAINS`` certificates, and given
        back with it. They are only material to build a chain from: the verification itself
        still needs a trusted root, and every validity period.
        """
        chain = peer_chain_der(ssl_object)
        if len(chain) > 1:
            leaf, intermediates = chain[0], tuple(chain[1:])
            if self._intermediates.get(leaf) != intermediates:
                self._intermediates.pop(leaf, None)
                if len(self._intermediates) >= MAX_REMEMBERED_CHAINS:
                    del self._intermediates[next(iter(self._intermediates))]
                self._intermediates[leaf] = intermediates
        elif chain:
            chain += self._intermediates.get(chain[0], ())
        return chain

    def reload_if_changed(self) -> bool:
        """Load the certificate files again if they changed; True when a new pair is in use.

        A pair that does not load (half written, mismatched) is logged once and the old one
        stays, untouched: the pair is tried on a scratch context first (see the module docstring).
        """
        try:
            cert_pem, key_pem = self._read_pair()
        except OSError as error:
            logger.warning("cannot read the serving certificate files: %s", error)
            return False
        digest = _digest(cert_pem, key_pem)
        if digest in (self._loaded, self._refused):
            return False
        try:
            _load_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert_pem, key_pem)
        except (OSError, ssl.SSLError) as error:
            self._refused = digest
            logger.warning("keeping the old serving certificate: the new files fail: %s", error)
            return False
        _load_pair(self.context, cert_pem, key_pem)
        self._loaded = digest
        logger.info("reloaded the serving certificate from %s", self.cert_file)
        return True


def _digest(cert_pem: bytes, key_pem: bytes) -> bytes:
    return hashlib.sha256(b"%d:" % len(cert_pem) + cert_pem + key_pem).digest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for another scheme or no
    token. As kube-apiserver reads it: the scheme in any case (RFC 9110), the token up to the
    next space.

    >>> bearer_token("bearer abc"), bearer_token("Basic abc"), bearer_token("Bearer ")
    ('abc', None, None)
    """
    if not authorization:
        return None
    parts = authorization.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


def token_bytes(token: str) -> bytes:
    """The bytes a token arrived as. aiohttp decodes header bytes that are not UTF-8 to lone
    surrogates (``surrogateescape``), which the plain ``encode()`` refuses with an exception."""
    return token.encode("utf-8", "surrogateescape")


def bearer_token_problem(token: str) -> str | None:
    """Why ``token`` cannot travel as ``Authorization: Bearer <token>`` (None when it can): the
    header ends a token at white space, and carries no control character.

    >>> bearer_token_problem("abc"), bearer_token_problem("a b")
    (None, 'holds white space: a bearer token cannot carry it')
    """
    if not token:
        return "is empty"
    if len(token.split()) > 1:
        return "holds white space: a bearer token cannot carry it"
    if any(ord(character) < 32 or ord(character) == 127 for character in token):
        return "holds a control character: a bearer token cannot carry it"
    return None


class PushToken:
    """The shared bearer token that standalone pushes present."""

    def __init__(self, token: str) -> None:
        problem = bearer_token_problem(token)
        if problem is not None:
            raise ValueError(f"the push token {problem}")
        self._expected = token.encode()

    @classmethod
    def from_file(cls, path: Path) -> PushToken:
        """Read the token (surrounding whitespace ignored)."""
        return cls(path.read_text().strip())

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token (constant-time compare)."""
        token = bearer_token(authorization)
        if token is None:
            return False
        return hmac.compare_digest(token_bytes(token), self._expected)


def ensure_token_file(path: Path) -> Path:
    """Create a random push token at ``path`` (mode 0600) unless one is there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        logger.info("generated a push token in %s", path)
    return path
