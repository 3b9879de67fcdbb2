"""A test double standing in for kube-apiserver, speaking its real JSON wire format.

No kube-apiserver (or kind, or envtest) runs in this environment, so the cluster-mode tests talk
to this aiohttp HTTPS server instead. It implements only what the adapter uses, in the shapes
kube-apiserver sends, so that the adapter drives it through the real ``kubernetes`` client
(a kubeconfig written by ``write_kubeconfig`` points the client at it):

- ``POST /apis/authentication.k8s.io/v1/tokenreviews`` and ``.../selfsubjectreviews``;
- ``POST /apis/authorization.k8s.io/v1/subjectaccessreviews`` and
  ``.../selfsubjectaccessreviews`` — each answers the posted object with its ``status`` filled;
- ``GET`` of ConfigMaps, Pods, Services (``/api/v1``) and ReplicaSets, Deployments
  (``/apis/apps/v1``): one object, a namespaced or cluster-wide list (``metadata.resourceVersion``,
  ``fieldSelector=metadata.name=...``), and ``?watch=true`` streams of
  ``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": ...}`` lines from a
  ``resourceVersion``, ending after ``timeoutSeconds`` (410 Gone for versions it no longer has);
- errors as ``metav1.Status`` bodies; callers authenticate with a bearer token.

It runs on its own thread and event loop, so synchronous clients (the adapter's worker threads,
``kubectl``, a test) and asynchronous ones can all use it. The knobs (``add_pod``,
``delete_pod``, ``add_token``, ``grant``, ``deny_self``, ``set_configmap``, ``down``, ``up``...)
are thread-safe: they run on the double's loop and return when applied.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from adapter import certs

ADAPTER_TOKEN = "adapter-service-account-token"
ADAPTER_USER = "system:serviceaccount:metrics:inference-metrics-adapter"

KINDS = {
    "pods": ("Pod", "v1"),
    "services": ("Service", "v1"),
    "configmaps": ("ConfigMap", "v1"),
    "replicasets": ("ReplicaSet", "apps/v1"),
    "deployments": ("Deployment", "apps/v1"),
}
CALLER = web.RequestKey("caller", str)
HISTORY = 1000
"""Watch events kept; a watch from an older resourceVersion gets 410 Gone."""


def status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


@dataclass
class Identity:
    """What a TokenReview says about a token."""

    username: str
    groups: list[str] = field(default_factory=list)
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)
    audiences: list[str] = field(default_factory=list)
    """Empty: the API server's own audience (accepted only when no audience is asked for)."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeApiDouble:
    """The test double (module docstring). Use ``with KubeApiDouble(tmp) as api: ...``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        ca = certs.make_ca("kube-apiserver-double-ca", now)
        serving = certs.make_serving_cert(ca, ["127.0.0.1", "localhost"], now)
        self.ca_file = directory / "kubeapi-ca.crt"
        self.ca_file.write_bytes(ca.cert_pem)
        self._cert_file = directory / "kubeapi.crt"
        self._key_file = directory / "kubeapi.key"
        self._cert_file.write_bytes(serving.cert_pem)
        self._key_file.write_bytes(serving.key_pem)
        self.port = 0
        self.callers: dict[str, str] = {ADAPTER_TOKEN: ADAPTER_USER}
        """Bearer tokens that may call the API, and whose they are."""
        self.tokens: dict[str, Identity] = {}
        """What TokenReviews answer, by token."""
        self.allowed: set[str] = set()
        """Users or groups every SubjectAccessReview allows (others are denied)."""
        self.policy: Callable[[Mapping[str, Any]], tuple[bool, str]] | None = None
        """Overrides ``allowed`` when set: spec -> (allowed, reason)."""
        self.missing: set[tuple[str, str, str]] = set()
        """(verb, group, resource) the adapter's own identity lacks."""
        self.review_delay_seconds = 0.0
        """How long each TokenReview and SubjectAccessReview takes (a slow API server)."""
        self.token_reviews: list[dict[str, Any]] = []
        self.access_reviews: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {k: {} for k in KINDS}
        self._versions = itertools.count(1)
        self._version = 0
        self._history: deque[tuple[int, str, str, dict[str, Any]]] = deque(maxlen=HISTORY)
        self._watchers: set[asyncio.Queue] = set()
        self._transports: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kubeapi", daemon=True)
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> KubeApiDouble:
        self._thread.start()
        self.up()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def _do(self, function: Callable[[], Any]) -> Any:
        async def call() -> Any:
            return function()

        return self._run(call())

    def up(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        self._run(self._up())

    def down(self) -> None:
        """Go away: end every watch, close every connection, stop listening."""
        self._run(self._down())

    async def _up(self) -> None:
        if self._runner is not None:
            return
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self._cert_file), str(self._key_file))
        app = web.Application(middlewares=[self._authenticate])
        self._routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=context)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def _down(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for queue in list(self._watchers):
            queue.put_nowait(None)
        await runner.cleanup()
        # Going away means every connection drops now, without a TLS goodbye that would need
        # the loop to keep running.
        for transport in list(self._transports):
            transport.abort()
        await asyncio.sleep(0.05)

    def write_kubeconfig(self, path: Path, token: str = ADAPTER_TOKEN) -> Path:
        """A kubeconfig for the real ``kubernetes`` client (and kubectl) pointing here."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "double",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "adapter", "user": {"token": token}}],
            "contexts": [{"name": "double", "context": {"cluster": "double", "user": "adapter"}}],
            "current-context": "double",
        }
        path.write_text(json.dumps(config, indent=2))
        return path

    # -- knobs ---------------------------------------------------------------------------------

    def add_token(self, token: str, identity: Identity) -> None:
        self._do(lambda: self.tokens.__setitem__(token, identity))

    def add_pod_token(
        self, token: str, namespace: str, pod: str, pod_uid: str, audience: str
    ) -> None:
        """A projected service-account token bound to a pod, as the kubelet mounts one."""
        self.add_token(
            token,
            Identity(
                f"system:serviceaccount:{namespace}:default",
                ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                str(uuid.uuid4()),
                {
                    "authentication.kubernetes.io/pod-name": [pod],
                    "authentication.kubernetes.io/pod-uid": [pod_uid],
                },
                [audience],
            ),
        )

    def grant(self, *subjects: str) -> None:
        """Let these users or groups through every SubjectAccessReview."""
        self._do(lambda: self.allowed.update(subjects))

    def revoke(self, *subjects: str) -> None:
        self._do(lambda: self.allowed.difference_update(subjects))

    def deny_self(self, verb: str, group: str, resource: str) -> None:
        """Take a permission away from the adapter's own identity."""
        self._do(lambda: self.missing.add((verb, group, resource)))

    def set_configmap(self, data: Mapping[str, str]) -> None:
        """Create or replace ``kube-system/extension-apiserver-authentication``."""
        self.put(
            "configmaps",
            {
                "metadata": {
                    "name": "extension-apiserver-authentication",
                    "namespace": "kube-system",
                },
                "data": dict(data),
            },
        )

    def add_pod(
        self,
        namespace: str,
        name: str,
        labels: Mapping[str, str] | None = None,
        replica_set: str | None = None,
    ) -> str:
        """Create a running pod (owned by ``replica_set`` if given); returns its uid."""
        uid = str(uuid.uuid4())
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "labels": dict(labels or {}),
        }
        if replica_set is not None:
            metadata["ownerReferences"] = [_owner("ReplicaSet", "apps/v1", replica_set)]
        self.put(
            "pods",
            {
                "metadata": metadata,
                "spec": {"containers": [{"name": "model", "image": "model:1"}]},
                "status": {"phase": "Running"},
            },
        )
        return uid

    def add_deployment(
        self, namespace: str, name: str, match_labels: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        """A Deployment and its current ReplicaSet ``<name>-rs``."""
        self.put(
            "deployments",
            {
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
                "spec": {"selector": {"matchLabels": dict(match_labels)}, "replicas": 1},
            },
        )
        self.put(
            "replicasets",
            {
                "metadata": {
                    "name": f"{name}-rs",
                    "namespace": namespace,
                    "labels": dict(match_labels),
                    "ownerReferences": [_owner("Deployment", "apps/v1", name)],
                },
                "spec": {"selector": {"matchLabels": dict(match_labels)}},
            },
        )

    def add_service(
        self, namespace: str, name: str, selector: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        self.put(
            "services",
            {
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
                "spec": {"selector": dict(selector), "ports": [{"port": 80}]},
            },
        )

    def put(self, resource: str, obj: dict[str, Any]) -> None:
        """Create or update an object (ADDED or MODIFIED to watchers)."""
        self._do(lambda: self._put(resource, obj))

    def delete(self, resource: str, namespace: str, name: str) -> None:
        """Delete an object (DELETED to watchers)."""
        self._do(lambda: self._delete(resource, namespace, name))

    def delete_pod(self, namespace: str, name: str) -> None:
        self.delete("pods", namespace, name)

    # -- state (double's loop only) ------------------------------------------------------------

    def _bump(self) -> int:
        self._version = next(self._versions)
        return self._version

    def _put(self, resource: str, obj: dict[str, Any]) -> None:
        kind, api_version = KINDS[resource]
        obj = {"kind": kind, "apiVersion": api_version, **json.loads(json.dumps(obj))}
        metadata = obj["metadata"]
        key = (metadata.get("namespace", ""), metadata["name"])
        old = self._objects[resource].get(key)
        metadata.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", _now())
        metadata["resourceVersion"] = str(self._bump())
        self._objects[resource][key] = obj
        self._notify(resource, "MODIFIED" if old else "ADDED", obj)

    def _delete(self, resource: str, namespace: str, name: str) -> None:
        obj = self._objects[resource].pop((namespace, name), None)
        if obj is None:
            return
        obj = json.loads(json.dumps(obj))
        obj["metadata"]["resourceVersion"] = str(self._bump())
        self._notify(resource, "DELETED", obj)

    def _notify(self, resource: str, event_type: str, obj: dict[str, Any]) -> None:
        entry = (int(obj["metadata"]["resourceVersion"]), resource, event_type, obj)
        self._history.append(entry)
        for queue in self._watchers:
            queue.put_nowait(entry)

    # -- HTTP ----------------------------------------------------------------------------------

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        if request.transport is not None:
            self._transports.add(request.transport)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        caller = self.callers.get(token) if scheme.lower() == "bearer" else None
        if caller is None:
            return status(401, "Unauthorized", "Unauthorized")
        request[CALLER] = caller
        return await handler(request)

    def _routes(self, app: web.Application) -> None:
        add = app.router.add_route
        add("POST", "/apis/authentication.k8s.io/v1/tokenreviews", self._token_review)
        add("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", self._self_review)
        add("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", self._access_review)
        add(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            self._self_access_review,
        )
        for prefix in ("/api/v1", "/apis/apps/v1"):
            add("GET", prefix + "/{resource}", self._get)
            add("GET", prefix + "/namespaces/{namespace}/{resource}", self._get)
            add("GET", prefix + "/namespaces/{namespace}/{resource}/{name}", self._get)

    def _forbidden_self(self, request: web.Request, verb: str, group: str, resource: str) -> bool:
        return request[CALLER] == ADAPTER_USER and (verb, group, resource) in self.missing

    async def _token_review(self, request: web.Request) -> web.Response:
        if self._forbidden_self(request, "create", "authentication.k8s.io", "tokenreviews"):
            return status(403, "Forbidden", "cannot create tokenreviews")
        review = await request.json()
        spec = review.get("spec") or {}
        self.token_reviews.append(spec)
        await asyncio.sleep(self.review_delay_seconds)
        identity = self.tokens.get(spec.get("token", ""))
        wanted = spec.get("audiences") or []
        result: dict[str, Any]
        if identity is None:
            result = {"authenticated": False, "error": "invalid bearer token"}
        elif not _audiences_match(wanted, identity.audiences):
            result = {"authenticated": False, "error": "token audiences are invalid"}
        else:
            user: dict[str, Any] = {"username": identity.username, "groups": identity.groups}
            if identity.uid:
                user["uid"] = identity.uid
            if identity.extra:
                user["extra"] = identity.extra
            result = {"authenticated": True, "user": user, "audiences": wanted or ["api"]}
        return web.json_response({**review, "status": result}, status=201)

    async def _self_review(self, request: web.Request) -> web.Response:
        review = await request.json()
        user = {"username": request[CALLER], "groups": ["system:authenticated"]}
        return web.json_response({**review, "status": {"userInfo": user}}, status=201)

    async def _access_review(self, request: web.Request) -> web.Response:
        if self._forbidden_self(request, "create", "authorization.k8s.io", "subjectaccessreviews"):
            return status(403, "Forbidden", "cannot create subjectaccessreviews")
        review = await request.json()
        spec = review.get("spec") or {}
        self.access_reviews.append(spec)
        await asyncio.sleep(self.review_delay_seconds)
        if self.policy is not None:
            allowed, reason = self.policy(spec)
        else:
            subjects = {spec.get("user"), *(spec.get("groups") or [])}
            allowed, reason = bool(subjects & self.allowed), ""
        result: dict[str, Any] = {"allowed": allowed}
        if reason:
            result["reason"] = reason
        return web.json_response({**review, "status": result}, status=201)

    async def _self_access_review(self, request: web.Request) -> web.Response:
        review = await request.json()
        attributes = (review.get("spec") or {}).get("resourceAttributes") or {}
        key = (attributes.get("verb"), attributes.get("group", ""), attributes.get("resource"))
        allowed = not (request[CALLER] == ADAPTER_USER and key in self.missing)
        return web.json_response({**review, "status": {"allowed": allowed}}, status=201)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        resource = request.match_info["resource"]
        if resource not in KINDS:
            return status(404, "NotFound", "the server could not find the requested resource")
        namespace = request.match_info.get("namespace")
        name = request.match_info.get("name")
        verb = "get" if name else ("watch" if _is_watch(request) else "list")
        group = "apps" if KINDS[resource][1] == "apps/v1" else ""
        if self._forbidden_self(request, verb, group, resource):
            return status(
                403,
                "Forbidden",
                f'{resource} is forbidden: User "{request[CALLER]}" cannot {verb} resource'
                f' "{resource}" in API group "{group}"',
            )
        if name is not None:
            obj = self._objects[resource].get((namespace or "", name))
            if obj is None:
                return status(404, "NotFound", f'{resource} "{name}" not found')
            return web.json_response(obj)
        field_name = _field_name(request.query.get("fieldSelector", ""))

        def selected(obj: Mapping[str, Any]) -> bool:
            metadata = obj["metadata"]
            return (namespace is None or metadata.get("namespace") == namespace) and (
                field_name is None or metadata["name"] == field_name
            )

        if verb == "watch":
            return await self._watch(request, resource, selected)
        kind, api_version = KINDS[resource]
        items = [
            {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
            for obj in self._objects[resource].values()
            if selected(obj)
        ]
        return web.json_response(
            {
                "kind": f"{kind}List",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(self._version)},
                "items": items,
            }
        )

    async def _watch(
        self, request: web.Request, resource: str, selected: Callable[[Mapping[str, Any]], bool]
    ) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self._version)
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(event_type: str, obj: Mapping[str, Any]) -> None:
            line = json.dumps({"type": event_type, "object": obj}) + "\n"
            await response.write(line.encode())

        if self._history and since < self._history[0][0] - 1:
            await send(
                "ERROR",
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"too old resource version: {since}",
                    "reason": "Expired",
                    "code": 410,
                },
            )
            return response
        queue: asyncio.Queue = asyncio.Queue()
        self._watchers.add(queue)
        try:
            for entry in list(self._history):
                if entry[0] > since:
                    queue.put_nowait(entry)
            deadline = self._loop.time() + timeout
            while True:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    break
                try:
                    entry = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
                if entry is None:
                    break
                version, kind, event_type, obj = entry
                if kind == resource and version > since and selected(obj):
                    await send(event_type, obj)
        finally:
            self._watchers.discard(queue)
        return response


def _owner(kind: str, api_version: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{kind}/{name}")),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _audiences_match(wanted: list[str], audiences: list[str]) -> bool:
    """A token is good for the audiences asked for, or (none asked) for the API server's own."""
    return bool(set(wanted) & set(audiences)) if wanted else not audiences


def _is_watch(request: web.Request) -> bool:
    return request.query.get("watch") in ("1", "true")


def _field_name(field_selector: str) -> str | None:
    """The name of a ``metadata.name=X`` field selector (the only kind this double knows)."""
    for part in field_selector.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "metadata.name":
            return value.strip().lstrip("=")
    return None
