"""TLS and authentication: who is on the other end of a request.

- ``ServingTls`` owns the server's ``ssl.SSLContext`` (TLS >= 1.2, client certificates requested
  and verified against the client CA when presented) and re-reads the certificate files when they
  change on disk: ``load_cert_chain`` on the live context, so every new handshake gets the new
  certificate while established connections keep theirs.
- ``user_from_peer_cert`` turns a verified client certificate into a Kubernetes user (CN is the
  name, each O a group), as kube-apiserver's x509 authenticator does.
- ``PushToken`` checks the shared push bearer token in constant time.

No aiohttp import: the middlewares in ``adapter.app`` call these.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

AUTHENTICATED_GROUP = "system:authenticated"


@dataclass(frozen=True)
class User:
    """An authenticated caller."""

    name: str
    groups: tuple[str, ...] = ()


def user_from_peer_cert(peer_cert: dict[str, Any] | None) -> User | None:
    """The user a verified client certificate names, or None without one.

    ``peer_cert`` is ``SSLObject.getpeercert()``: only certificates that passed verification
    against the client CA get this far, since the handshake refuses the others.
    """
    if not peer_cert:
        return None
    common_names, organizations = [], []
    for rdn in peer_cert.get("subject", ()):
        for attribute, value in rdn:
            if attribute == "commonName":
                common_names.append(value)
            elif attribute == "organizationName":
                organizations.append(value)
    if not common_names or not common_names[0]:
        return None
    groups = [*organizations, AUTHENTICATED_GROUP]
    return User(common_names[0], tuple(dict.fromkeys(groups)))


def _mtimes(paths: tuple[Path, ...]) -> tuple[float, ...]:
    return tuple(path.stat().st_mtime_ns for path in paths)


class ServingTls:
    """The server's TLS context, with the serving certificate re-read when its files change."""

    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(["http/1.1"])
        self.context.verify_mode = ssl.CERT_OPTIONAL
        self.context.load_verify_locations(cafile=str(client_ca_file))
        self.context.load_cert_chain(str(cert_file), str(key_file))
        self._loaded = _mtimes((cert_file, key_file))

    def reload_if_changed(self) -> bool:
        """Load the certificate files again if they changed; True when a new pair is in use.

        A pair that does not load (half written, mismatched) is logged and the old one stays.
        """
        try:
            current = _mtimes((self.cert_file, self.key_file))
        except OSError as error:
            logger.warning("cannot stat the serving certificate files: %s", error)
            return False
        if current == self._loaded:
            return False
        try:
            self.context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as error:
            logger.warning("keeping the old serving certificate: the new files fail: %s", error)
            return False
        self._loaded = current
        logger.info("reloaded the serving certificate from %s", self.cert_file)
        return True


class PushToken:
    """The shared bearer token that standalone pushes present."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the push token is empty")
        self._expected = f"Bearer {token}".encode()

    @classmethod
    def from_file(cls, path: Path) -> PushToken:
        """Read the token (surrounding whitespace ignored)."""
        return cls(path.read_text().strip())

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token (constant-time compare)."""
        if authorization is None:
            return False
        return hmac.compare_digest(authorization.encode(), self._expected)


def ensure_token_file(path: Path) -> Path:
    """Create a random push token at ``path`` (mode 0600) unless one is there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        logger.info("generated a push token in %s", path)
    return path
