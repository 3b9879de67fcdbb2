"""Delegated authentication and authorization, as an aggregated API server does it (cluster mode).

Mirrors the Go delegating authenticator and webhook authorizer of ``k8s.io/apiserver``
(reference/custom-metrics-api.md section 8):

1. *Front proxy*: a client certificate that chains to the request-header CA, carries the
   ``clientAuth`` usage and (when the list is not empty) a CN in ``requestheader-allowed-names``.
   Only then are the user, uid, groups and extras read from the configured headers; headers of any
   other request are never looked at.
2. *x509*: a client certificate that chains to the client CA: user = CN, groups = O
   (``adapter.clientcerts`` verifies certificates and reads their names).
3. *Bearer token*: a ``TokenReview`` (results cached for the token TTL).
4. Otherwise *anonymous*. Once an authenticator failed (a certificate no CA vouches for, a token
   that reviews as invalid), the answer is 401, never anonymous (Go's ``FailOnError`` union).

Every authenticated user gets ``system:authenticated``. ``Authorizer`` asks a
``SubjectAccessReview`` about the request attributes that ``request_attributes`` derives exactly as
``k8s.io/apiserver``'s request-info parser does, and caches allow and deny separately.

If kube-apiserver cannot be reached, cached answers serve until they expire; after that a request
gets a 503 ``Status``. Nothing fails open.

The Kubernetes calls sit behind the ``TokenReviewer`` and ``AccessReviewer`` protocols
(``adapter.kube.KubeClient`` implements them; tests may pass fakes), which raise
``ReviewUnavailable`` when the API is out of reach. No aiohttp import, no ``kubernetes`` import;
time comes from an injected clock.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509

from adapter import clientcerts, errors
from adapter.transport import User, bearer_token, with_authenticated_group

logger = logging.getLogger(__name__)

CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "extension-apiserver-authentication"
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
MASTERS_GROUP = "system:masters"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
MAX_CACHE_ENTRIES = 10_000


class ReviewUnavailable(Exception):
    """kube-apiserver could not answer a review (unreachable, timed out, 5xx, or refused us)."""


# -- the ConfigMap -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestHeaderConfig:
    """How to recognise the front proxy and where it puts the user (``requestheader-*`` keys)."""

    ca_pem: bytes
    allowed_names: tuple[str, ...] = ()
    """CNs the proxy certificate may have; empty = any certificate signed by the CA."""
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_headers_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)
    uid_headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthenticationSource:
    """What ``kube-system/extension-apiserver-authentication`` says (plus flag overrides)."""

    client_ca_pem: bytes | None = None
    """CA of ordinary x509 client certificates; None = no x509 users."""
    request_header: RequestHeaderConfig | None = None
    """None = no front proxy is trusted."""

    def ca_bundles(self) -> list[bytes]:
        """Every CA the TLS handshake must accept (PEM bundles)."""
        bundles = [self.client_ca_pem] if self.client_ca_pem else []
        if self.request_header is not None:
            bundles.append(self.request_header.ca_pem)
        return bundles


@dataclass(frozen=True)
class RequestHeaderOverrides:
    """Flag values that replace the ConfigMap's ``requestheader-*`` keys; None = keep."""

    ca_pem: bytes | None = None
    allowed_names: tuple[str, ...] | None = None
    username_headers: tuple[str, ...] | None = None
    group_headers: tuple[str, ...] | None = None
    extra_headers_prefixes: tuple[str, ...] | None = None
    client_ca_pem: bytes | None = None
    """``--client-ca-file``: replaces the ConfigMap's ``client-ca-file``."""


def _string_list(data: Mapping[str, str], key: str) -> tuple[str, ...] | None:
    """A JSON string array under ``key`` (how kube-apiserver writes the lists); None if absent.

    >>> _string_list({"k": '["front-proxy-client"]'}, "k")
    ('front-proxy-client',)
    """
    text = data.get(key)
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{key} is not a JSON array of strings: {error}") from error
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} is not a JSON array of strings")
    return tuple(value)


def parse_authentication_configmap(
    data: Mapping[str, str], overrides: RequestHeaderOverrides | None = None
) -> AuthenticationSource:
    """The authentication inputs from the ConfigMap's ``data``, flag overrides applied.

    Raises ValueError naming a malformed key. Without a request-header CA no front proxy is
    trusted, whatever the other keys say.
    """
    overrides = overrides or RequestHeaderOverrides()
    client_ca = overrides.client_ca_pem or _pem(data.get("client-ca-file"))
    header_ca = overrides.ca_pem or _pem(data.get("requestheader-client-ca-file"))
    request_header = None
    if header_ca is not None:

        def pick(
            override: tuple[str, ...] | None, key: str, default: tuple[str, ...]
        ) -> tuple[str, ...]:
            if override is not None:
                return override
            value = _string_list(data, key)
            return default if value is None else value

        request_header = RequestHeaderConfig(
            ca_pem=header_ca,
            allowed_names=pick(overrides.allowed_names, "requestheader-allowed-names", ()),
            username_headers=pick(overrides.username_headers, "requestheader-username-headers", ()),
            group_headers=pick(overrides.group_headers, "requestheader-group-headers", ()),
            extra_headers_prefixes=pick(
                overrides.extra_headers_prefixes, "requestheader-extra-headers-prefix", ()
            ),
            uid_headers=pick(None, "requestheader-uid-headers", ()),
        )
    for pem in (client_ca, header_ca):
        if pem is not None:
            clientcerts.load_ca_bundle(pem)  # fail early on garbage
    return AuthenticationSource(client_ca, request_header)


def _pem(text: str | None) -> bytes | None:
    if text is None or not text.strip():
        return None
    return text.encode()


# -- the front proxy's headers -------------------------------------------------------------------


Headers = Sequence[tuple[str, str]]
"""Request headers as (name, value) pairs, repeated names repeated (``multidict.items()``)."""


def _first_value(headers: Headers, names: Iterable[str]) -> str:
    for name in names:
        lowered = name.lower()
        for key, value in headers:
            if key.lower() == lowered and value:
                return value
    return ""


def user_from_headers(headers: Headers, config: RequestHeaderConfig) -> User | None:
    """The user the (verified) front proxy names in its headers; None without a user header.

    Groups are every non-empty value of every group header; an extra's key is the header name
    after the prefix, lower-cased and %-unescaped (``X-Remote-Extra-Scopes`` -> ``scopes``).
    """
    name = _first_value(headers, config.username_headers)
    if not name:
        return None
    group_names = {g.lower() for g in config.group_headers}
    groups = [v for k, v in headers if k.lower() in group_names and v]
    extra: dict[str, list[str]] = {}
    prefixes = [p.lower() for p in config.extra_headers_prefixes]
    for key, value in headers:
        lowered = key.lower()
        for prefix in prefixes:
            if lowered.startswith(prefix) and len(lowered) > len(prefix) and value:
                extra_key = urllib.parse.unquote(lowered[len(prefix) :])
                extra.setdefault(extra_key, []).append(value)
                break
    uid = _first_value(headers, config.uid_headers)
    return with_authenticated_group(
        User(name, tuple(groups), uid, {k: tuple(v) for k, v in extra.items()})
    )


# -- caches --------------------------------------------------------------------------------------


class TtlCache:
    """Answers kept for a while: ``get`` returns None once an entry's time is up.

    Bounded: past ``max_entries`` the oldest entries go first. Not thread-safe (one event loop).
    """

    def __init__(self, max_entries: int = MAX_CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[Any, tuple[float, Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Any, now: float) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if now >= expires:
            del self._entries[key]
            return None
        return value

    def put(self, key: Any, value: Any, ttl_seconds: float, now: float) -> None:
        if ttl_seconds <= 0:
            return
        self._entries.pop(key, None)
        self._entries[key] = (now + ttl_seconds, value)
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        self._entries.clear()


# -- authentication ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenReviewResult:
    """``TokenReview.status`` decoded."""

    authenticated: bool
    user: User | None = None
    audiences: tuple[str, ...] = ()
    error: str = ""

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> TokenReviewResult:
        """Decode the ``status`` of a TokenReview answer."""
        if not status.get("authenticated"):
            return cls(False, error=str(status.get("error") or ""))
        raw = status.get("user") or {}
        extra = {
            str(k): tuple(str(v) for v in (values or ()))
            for k, values in (raw.get("extra") or {}).items()
        }
        user = User(
            str(raw.get("username") or ""),
            tuple(str(g) for g in raw.get("groups") or ()),
            str(raw.get("uid") or ""),
            extra,
        )
        audiences = tuple(str(a) for a in status.get("audiences") or ())
        return cls(bool(user.name), with_authenticated_group(user), audiences)


class TokenReviewer(Protocol):
    """Creates TokenReviews (``adapter.kube.KubeClient`` in production)."""

    async def review_token(self, token: str, audiences: Sequence[str]) -> Mapping[str, Any]:
        """The ``status`` of a TokenReview of ``token``; raises ``ReviewUnavailable``."""
        ...


@dataclass(frozen=True)
class PodBinding:
    """The pod a service-account token is bound to (from its TokenReview)."""

    namespace: str
    name: str
    uid: str
    service_account: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Credentials:
    """What a request presents: its TLS chain (leaf first, DER) and headers."""

    peer_chain_der: Sequence[bytes] = ()
    headers: Headers = ()

    def bearer_token(self) -> str | None:
        return bearer_token(_first_value(self.headers, ("Authorization",)))


class Authenticator:
    """Who is calling: front proxy, x509, token or anonymous (module docstring)."""

    def __init__(
        self,
        source: AuthenticationSource,
        reviewer: TokenReviewer,
        token_ttl_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.reviewer = reviewer
        self.token_ttl_seconds = token_ttl_seconds
        self.clock = clock
        self.wall_clock = wall_clock
        self.tokens = TtlCache()
        self.token_reviews = 0
        """TokenReviews sent (cache misses), for tests and telemetry."""
        self.update(source)

    def update(self, source: AuthenticationSource) -> None:
        """Use new CAs and header names from now on (the ConfigMap changed)."""
        self.source = source
        self._client_roots = (
            clientcerts.load_ca_bundle(source.client_ca_pem) if source.client_ca_pem else []
        )
        header = source.request_header
        self._header_roots = clientcerts.load_ca_bundle(header.ca_pem) if header else []

    async def authenticate(self, credentials: Credentials) -> User:
        """The caller; raises 401 when a presented credential proves nothing, 503 when the
        token cannot be reviewed."""
        problems = []
        if credentials.peer_chain_der:
            user, problems = self._from_certificate(credentials)
            if user is not None:
                return user
        token = credentials.bearer_token()
        if token is not None:
            result = await self._review(token, ())
            if result.authenticated and result.user is not None:
                return result.user
            problems.append(f"the bearer token is not valid{_colon(result.error)}")
        if problems:
            raise errors.unauthorized(f"Unauthorized: {'; '.join(problems)}")
        return ANONYMOUS

    def _from_certificate(self, credentials: Credentials) -> tuple[User | None, list[str]]:
        try:
            chain = [x509.load_der_x509_certificate(der) for der in credentials.peer_chain_der]
        except ValueError:
            return None, ["the client certificate does not parse"]
        leaf, intermediates, now = chain[0], chain[1:], self.wall_clock()
        problems = []
        header = self.source.request_header
        if header is not None:
            try:
                clientcerts.verify_client_certificate(leaf, intermediates, self._header_roots, now)
                name = clientcerts.common_name(leaf)
                if header.allowed_names and name not in header.allowed_names:
                    raise clientcerts.CertificateRejected(
                        f"the front-proxy certificate CN {name!r} is not one of"
                        f" requestheader-allowed-names {list(header.allowed_names)}"
                    )
            except clientcerts.CertificateRejected as rejected:
                problems.append(str(rejected))
            else:
                user = user_from_headers(credentials.headers, header)
                if user is not None:
                    return user, []
                problems.append("the front proxy named no user in its headers")
        if self._client_roots:
            try:
                clientcerts.verify_client_certificate(leaf, intermediates, self._client_roots, now)
            except clientcerts.CertificateRejected as rejected:
                problems.append(f"{rejected} (client-ca-file)")
            else:
                user = clientcerts.user_from_certificate(leaf)
                if user is not None:
                    return user, []
                problems.append("the client certificate has no common name")
        if not problems:
            problems.append("no CA is configured for client certificates")
        return None, problems

    async def _review(self, token: str, audiences: tuple[str, ...]) -> TokenReviewResult:
        try:
            raw = token.encode()
        except UnicodeEncodeError:
            # Header bytes that are not UTF-8 (aiohttp keeps them as lone surrogates): no token
            # of the cluster's, and the JSON of a TokenReview could not carry them.
            return TokenReviewResult(False, error="the token is not UTF-8 text")
        key = (hashlib.sha256(raw).hexdigest(), audiences)
        now = self.clock()
        cached = self.tokens.get(key, now)
        if cached is not None:
            return cached
        try:
            self.token_reviews += 1
            status = await self.reviewer.review_token(token, audiences)
        except ReviewUnavailable as error:
            logger.warning("TokenReview failed: %s", error)
            raise errors.service_unavailable(
                f"cannot authenticate the bearer token: the Kubernetes API is unreachable"
                f" ({error}) and no cached TokenReview is fresh"
            ) from error
        result = TokenReviewResult.from_status(status)
        self.tokens.put(key, result, self.token_ttl_seconds, self.clock())
        return result

    async def authenticate_pod(self, credentials: Credentials, audience: str) -> PodBinding:
        """The pod whose projected service-account token (for ``audience``) the request
        carries; 401 without a valid one, 403 for a token not bound to a pod."""
        token = credentials.bearer_token()
        if token is None:
            raise _bearer_challenge(
                "a push needs the pod's projected service-account token"
                f" (audience {audience!r}) as a bearer token"
            )
        result = await self._review(token, (audience,))
        if not result.authenticated or result.user is None:
            raise _bearer_challenge(
                f"the push token is not valid for audience {audience!r}{_colon(result.error)}"
            )
        if result.audiences and audience not in result.audiences:
            raise _bearer_challenge(
                f"the push token is for audiences {list(result.audiences)}, not {audience!r}"
            )
        user = result.user
        pod_names = user.extra.get(POD_NAME_EXTRA, ())
        pod_uids = user.extra.get(POD_UID_EXTRA, ())
        if not user.name.startswith(SERVICE_ACCOUNT_PREFIX) or not pod_names or not pod_uids:
            raise errors.forbidden(
                f'User "{user.name}" cannot push metrics: the token is not a service-account'
                " token bound to a pod (mount a projected serviceAccountToken volume)"
            )
        namespace, _, service_account = user.name[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        return PodBinding(namespace, pod_names[0], pod_uids[0], service_account)


def _colon(text: str) -> str:
    return f": {text}" if text else ""


def _bearer_challenge(message: str) -> errors.ApiError:
    error = errors.unauthorized(message)
    error.headers["WWW-Authenticate"] = "Bearer"
    return error


# -- authorization -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attributes:
    """What a request does, in ``SubjectAccessReview`` terms (``authorizer.Attributes``)."""

    verb: str
    path: str
    resource_request: bool
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""

    def review_attributes(self) -> dict[str, Any]:
        """``resourceAttributes`` or ``nonResourceAttributes`` of a SAR spec (empty fields out)."""
        if not self.resource_request:
            return {"nonResourceAttributes": {"path": self.path, "verb": self.verb}}
        fields = {
            "namespace": self.namespace,
            "verb": self.verb,
            "group": self.group,
            "version": self.version,
            "resource": self.resource,
            "subresource": self.subresource,
            "name": self.name,
        }
        return {"resourceAttributes": {k: v for k, v in fields.items() if v}}


_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The authorization attributes of a request, as ``k8s.io/apiserver``'s request-info parser
    derives them: ``/apis/<group>/<version>/...`` with a resource is a resource request, anything
    else a non-resource one (verb = lower-cased method).

    >>> a = request_attributes("GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/q", {})
    >>> (a.resource, a.namespace, a.verb)
    ('q', 'ml', 'list')
    """
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 4 or parts[0] != "apis":
        return Attributes(method.lower(), path, False)
    group, version, parts = parts[1], parts[2], parts[3:]
    verb = _METHOD_VERBS.get(method.upper(), method.lower())
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 else ""
    if verb == "get" and not name:
        verb = "watch" if query.get("watch") in ("1", "true") else "list"
    return Attributes(verb, path, True, group, version, resource, subresource, name, namespace)


def forbidden_message(user: User, attributes: Attributes, reason: str = "") -> str:
    """Go's ``forbiddenMessage`` wrapped as ``NewForbidden`` does.

    >>> a = Attributes("get", "/apis/x/v1", False)
    >>> forbidden_message(User("bob"), a)
    'forbidden: User "bob" cannot get path "/apis/x/v1"'
    """
    suffix = _colon(reason)
    if not attributes.resource_request:
        return (
            f'forbidden: User "{user.name}" cannot {attributes.verb} path'
            f' "{attributes.path}"{suffix}'
        )
    resource = attributes.resource
    if attributes.subresource:
        resource = f"{resource}/{attributes.subresource}"
    scope = (
        f'in the namespace "{attributes.namespace}"'
        if attributes.namespace
        else "at the cluster scope"
    )
    denial = (
        f'User "{user.name}" cannot {attributes.verb} resource "{resource}" in API group'
        f' "{attributes.group}" {scope}{suffix}'
    )
    qualified = f"{attributes.resource}.{attributes.group}" if attributes.group else resource
    if attributes.name:
        return f'{qualified} "{attributes.name}" is forbidden: {denial}'
    return f"{qualified} is forbidden: {denial}"


def forbidden_error(user: User, attributes: Attributes, reason: str = "") -> errors.ApiError:
    """The 403 ``Status`` for a denied request, with ``details`` as kube-apiserver fills them."""
    error = errors.forbidden(forbidden_message(user, attributes, reason))
    if attributes.resource_request:
        error.details = {"group": attributes.group, "kind": attributes.resource}
        if attributes.name:
            error.details["name"] = attributes.name
    return error


class AccessReviewer(Protocol):
    """Creates SubjectAccessReviews (``adapter.kube.KubeClient`` in production)."""

    async def review_access(self, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        """The ``status`` of a SubjectAccessReview with ``spec``; raises ``ReviewUnavailable``."""
        ...


def review_spec(user: User, attributes: Attributes) -> dict[str, Any]:
    """The ``spec`` of a SubjectAccessReview (empty fields left out, as Go's JSON omits them)."""
    spec: dict[str, Any] = {"user": user.name}
    if user.uid:
        spec["uid"] = user.uid
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in sorted(user.extra.items())}
    spec.update(attributes.review_attributes())
    return spec


@dataclass
class Authorizer:
    """Whether a user may do what a request does (module docstring)."""

    reviewer: AccessReviewer
    authorized_ttl_seconds: float = 10.0
    unauthorized_ttl_seconds: float = 10.0
    always_allow_paths: tuple[str, ...] = ("/healthz", "/readyz", "/livez")
    clock: Callable[[], float] = time.monotonic
    decisions: TtlCache = field(default_factory=TtlCache)
    reviews: int = 0
    """SubjectAccessReviews sent (cache misses), for tests and telemetry."""

    def always_allowed(self, path: str) -> bool:
        """Paths that skip authentication and authorization (``/x`` exact, ``/x/*`` prefix)."""
        return path_allowed(path, self.always_allow_paths)

    async def authorize(self, user: User, attributes: Attributes) -> None:
        """Return if allowed; raise 403 when denied, 503 when no review can be had."""
        if MASTERS_GROUP in user.groups:
            return
        spec = review_spec(user, attributes)
        key = json.dumps(spec, sort_keys=True)
        cached = self.decisions.get(key, self.clock())
        if cached is None:
            try:
                self.reviews += 1
                status = await self.reviewer.review_access(spec)
            except ReviewUnavailable as error:
                logger.warning("SubjectAccessReview failed: %s", error)
                raise errors.service_unavailable(
                    f'cannot authorize User "{user.name}": the Kubernetes API is unreachable'
                    f" ({error}) and no cached SubjectAccessReview is fresh"
                ) from error
            allowed = bool(status.get("allowed")) and not status.get("denied")
            reason = str(status.get("reason") or status.get("evaluationError") or "")
            cached = (allowed, reason)
            ttl = self.authorized_ttl_seconds if allowed else self.unauthorized_ttl_seconds
            self.decisions.put(key, cached, ttl, self.clock())
        allowed, reason = cached
        if not allowed:
            raise forbidden_error(user, attributes, reason)


def path_allowed(path: str, patterns: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``patterns`` (exact, or a prefix when the pattern ends ``*``).

    >>> path_allowed("/healthz/ping", ["/healthz/*"])
    True
    """
    for pattern in patterns:
        if pattern.endswith("*"):
            if path.startswith(pattern[:-1]):
                return True
        elif path == pattern:
            return True
    return False
