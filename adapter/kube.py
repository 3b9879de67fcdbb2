"""The adapter's side of kube-apiserver: reviews, the ConfigMap, and informers for the cluster view.

- ``KubeClient`` wraps one ``kubernetes.client.ApiClient`` (configured from ``--kubeconfig`` or
  in-cluster) and makes the few calls the adapter needs — TokenReview, SubjectAccessReview,
  SelfSubjectAccessReview, SelfSubjectReview, list and watch — each on a worker thread
  (``asyncio.to_thread``), so the event loop never blocks on the synchronous client. It speaks
  JSON through the client's own ``param_serialize``/``call_api`` (its configuration, TLS, and
  token refresh) and skips the model classes: the adapter reads a handful of fields.
- ``Informer`` is list + watch of one resource on its own thread, the way client-go's reflector
  works: list, then watch from the list's ``resourceVersion``; a watch that ends is resumed from
  the last version seen; ``410 Gone`` or any error means a fresh list (errors after a backoff that
  doubles up to ``MAX_BACKOFF_SECONDS``, each retry logged with its attempt number); every
  ``resync_seconds`` a full list reconciles anything missed. Events reach the event loop through
  ``loop.call_soon_threadsafe``; all state lives on the loop, so it needs no locks.
- ``ClusterView`` is that state: pods, replica sets, deployments and services, answering
  ``adapter.cluster.PodView``. A pod that disappears (deleted, or replaced under the same name
  with a new uid) is reported to ``on_pod_gone`` at once, so its pushed data is dropped.

Every failure to reach the API is a ``KubeError`` (a ``kubeauth.ReviewUnavailable``), so the
authentication layer never fails open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from adapter import cluster, resources, selectors
from adapter.kubeauth import ReviewUnavailable
from adapter.resources import PodRef

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = (5.0, 10.0)
"""(connect, read) seconds for one review or list call."""
WATCH_TIMEOUT_SECONDS = 300
"""Server-side length of one watch (kube-apiserver picks 5-10 min itself when asked for none)."""
MAX_BACKOFF_SECONDS = 5.0
FIRST_BACKOFF_SECONDS = 0.2


class KubeError(ReviewUnavailable):
    """kube-apiserver did not give the answer asked for; ``status`` is its HTTP code (None when
    it could not be reached at all) and ``message`` its ``Status`` message when it sent one."""

    def __init__(self, what: str, status: int | None, message: str) -> None:
        super().__init__(f"{what}: {message}" if status is None else f"{what}: {status} {message}")
        self.what = what
        self.status = status
        self.message = message


def _status_message(body: bytes) -> str:
    """The message of a ``Status`` body, or its first 200 bytes (never a whole body in logs)."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace")
    if isinstance(decoded, dict) and "message" in decoded:
        return str(decoded["message"])
    return body[:200].decode(errors="replace")


class KubeClient:
    """The calls the adapter makes to kube-apiserver (module docstring). Thread-safe."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api_client = api_client

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path | None) -> KubeClient:
        """A client from a kubeconfig file, or from the pod's service account for None."""
        configuration = kubernetes.client.Configuration()
        if kubeconfig is None:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        else:
            kubernetes.config.load_kube_config(
                config_file=str(kubeconfig), client_configuration=configuration
            )
        return cls(kubernetes.client.ApiClient(configuration))

    def close(self) -> None:
        """Close the connection pool."""
        self.api_client.close()

    # -- synchronous core (worker threads) -----------------------------------------------------

    def open(
        self,
        method: str,
        path: str,
        what: str,
        query: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> urllib3.BaseHTTPResponse:
        """Send a request; the streaming response on 2xx, ``KubeError`` otherwise."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            params = self.api_client.param_serialize(
                method,
                path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(*params, _request_timeout=timeout).response
        except ApiException as error:
            raise KubeError(what, None, str(error.reason or error)) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeError(what, None, f"cannot reach the Kubernetes API: {error}") from error
        if not 200 <= response.status <= 299:
            try:
                message = _status_message(response.data)
            finally:
                response.release_conn()
            raise KubeError(what, response.status, message)
        return response

    def request(
        self,
        method: str,
        path: str,
        what: str,
        query: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send a request and decode its JSON answer (``KubeError`` on any failure)."""
        response = self.open(method, path, what, query, body)
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeError(what, None, f"the answer broke off: {error}") from error
        finally:
            response.release_conn()
        try:
            decoded = json.loads(data)
        except ValueError as error:
            raise KubeError(what, response.status, "the answer is not JSON") from error
        if not isinstance(decoded, dict):
            raise KubeError(what, response.status, "the answer is not a JSON object")
        return decoded

    def _create(self, path: str, kind: str, group_version: str, spec: Mapping[str, Any]) -> dict:
        body = {"apiVersion": group_version, "kind": kind, "spec": dict(spec)}
        answer = self.request("POST", path, f"create {kind}", body=body)
        status = answer.get("status")
        return status if isinstance(status, dict) else {}

    # -- the calls -----------------------------------------------------------------------------

    async def review_token(self, token: str, audiences: Sequence[str]) -> Mapping[str, Any]:
        """``TokenReview.status`` for ``token`` (``kubeauth.TokenReviewer``)."""
        spec: dict[str, Any] = {"token": token}
        if audiences:
            spec["audiences"] = list(audiences)
        return await asyncio.to_thread(
            self._create,
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "TokenReview",
            "authentication.k8s.io/v1",
            spec,
        )

    async def review_access(self, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        """``SubjectAccessReview.status`` (``kubeauth.AccessReviewer``)."""
        return await asyncio.to_thread(
            self._create,
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            "SubjectAccessReview",
            "authorization.k8s.io/v1",
            spec,
        )

    async def review_own_access(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        """``SelfSubjectAccessReview.status``: may the adapter itself do this?"""
        return await asyncio.to_thread(
            self._create,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            "authorization.k8s.io/v1",
            attributes,
        )

    async def whoami(self) -> str | None:
        """The adapter's own user name (SelfSubjectReview), or None where the API lacks it."""
        try:
            answer = await asyncio.to_thread(
                self.request,
                "POST",
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                "create SelfSubjectReview",
                (),
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            )
        except KubeError as error:
            if error.status in (404, 403):
                return None
            raise
        name = (answer.get("status") or {}).get("userInfo", {}).get("username")
        return str(name) if name else None

    async def read_configmap(self, namespace: str, name: str) -> dict[str, str]:
        """The ``data`` of a ConfigMap."""
        answer = await asyncio.to_thread(
            self.request,
            "GET",
            f"/api/v1/namespaces/{namespace}/configmaps/{name}",
            f"get configmap {namespace}/{name}",
        )
        return {str(k): str(v) for k, v in (answer.get("data") or {}).items()}


# -- informers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A resource to list and watch (across all namespaces unless the path names one)."""

    name: str
    path: str
    field_selector: str = ""


PODS = Kind("pods", "/api/v1/pods")
REPLICA_SETS = Kind("replicasets", "/apis/apps/v1/replicasets")
DEPLOYMENTS = Kind("deployments", "/apis/apps/v1/deployments")
SERVICES = Kind("services", "/api/v1/services")
VIEW_KINDS = (PODS, REPLICA_SETS, DEPLOYMENTS, SERVICES)

SYNC = "SYNC"
"""The event type an informer delivers after a list: the payload is every object."""

Deliver = Callable[[str, Any], None]
"""Receives (event type, object) — or (``SYNC``, list of objects) — on the event loop."""


class _Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class Informer:
    """List + watch of one ``Kind`` on a daemon thread (module docstring)."""

    def __init__(
        self,
        client: KubeClient,
        kind: Kind,
        deliver: Deliver,
        loop: asyncio.AbstractEventLoop,
        resync_seconds: float = 300.0,
        watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
    ) -> None:
        self.client = client
        self.kind = kind
        self.deliver = deliver
        self.loop = loop
        self.resync_seconds = resync_seconds
        self.watch_timeout_seconds = watch_timeout_seconds
        self.lists = 0
        """Lists done so far (the first one is the initial sync)."""
        self._stopping = threading.Event()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_seconds: float = 5.0) -> None:
        """Stop watching and wait (bounded) for the thread to end."""
        self._stopping.set()
        with self._lock:
            response = self._response
        if response is not None:
            _interrupt(response)
        self._thread.join(timeout_seconds)

    def _query(self) -> list[tuple[str, str]]:
        return [("fieldSelector", self.kind.field_selector)] if self.kind.field_selector else []

    def _post(self, event_type: str, payload: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.deliver, event_type, payload)
        except RuntimeError:  # the loop closed under us: shutting down
            self._stopping.set()

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                version = self._list()
                attempt = 0
                deadline = time.monotonic() + self.resync_seconds
                while not self._stopping.is_set():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    version = self._watch(version, min(self.watch_timeout_seconds, remaining))
            except _Expired:
                logger.info("%s: the watch expired (410 Gone); listing again", self.kind.name)
            except Exception as error:  # the top of a thread: log, back off, retry
                if self._stopping.is_set():
                    break
                attempt += 1
                delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
                delay *= 0.8 + 0.4 * random.random()  # noqa: S311 - jitter, not cryptography
                logger.warning(
                    "%s: list/watch failed (attempt %d), retrying in %.1fs: %s",
                    self.kind.name,
                    attempt,
                    delay,
                    error,
                )
                self._stopping.wait(delay)

    def _list(self) -> str:
        answer = self.client.request("GET", self.kind.path, f"list {self.kind.name}", self._query())
        items = answer.get("items") or []
        self.lists += 1
        self._post(SYNC, items)
        return str((answer.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, version: str, timeout_seconds: float) -> str:
        query = [
            *self._query(),
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(max(1, int(timeout_seconds)))),
        ]
        if version:
            query.append(("resourceVersion", version))
        response = self.client.open(
            "GET",
            self.kind.path,
            f"watch {self.kind.name}",
            query,
            timeout=(REQUEST_TIMEOUT[0], timeout_seconds + 30),
        )
        with self._lock:
            self._response = response
        try:
            if self._stopping.is_set():
                return version
            for line in iter_resp_lines(response):
                if self._stopping.is_set():
                    break
                version = self._event(line, version)
        finally:
            with self._lock:
                self._response = None
            response.release_conn()
        return version

    def _event(self, line: str | bytes, version: str) -> str:
        event = json.loads(line)
        event_type, obj = event.get("type"), event.get("object") or {}
        if event_type == "ERROR":
            if obj.get("code") == 410:
                raise _Expired
            raise KubeError(f"watch {self.kind.name}", obj.get("code"), str(obj.get("message")))
        new_version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if event_type in ("ADDED", "MODIFIED", "DELETED"):
            self._post(event_type, obj)
        return new_version


def _interrupt(response: urllib3.BaseHTTPResponse) -> None:
    """Unblock a thread reading ``response`` (closing alone does not wake a blocked read)."""
    shutdown = getattr(response, "shutdown", None)
    if shutdown is not None:
        with contextlib.suppress(OSError):
            shutdown()
        return
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        import socket

        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


# -- the cluster view ----------------------------------------------------------------------------


def selector_from_label_selector(label_selector: Mapping[str, Any] | None) -> selectors.Selector:
    """A ``LabelSelector`` object as a ``Selector``; raises ``selectors.InvalidSelector``.

    >>> str(selector_from_label_selector({"matchLabels": {"app": "model"}}))
    'app=model'
    """
    if not label_selector:
        return selectors.EVERYTHING
    operators = {
        "In": selectors.IN,
        "NotIn": selectors.NOT_IN,
        "Exists": selectors.EXISTS,
        "DoesNotExist": selectors.DOES_NOT_EXIST,
    }
    requirements = [
        selectors.Requirement(str(k), selectors.EQUALS, (str(v),))
        for k, v in (label_selector.get("matchLabels") or {}).items()
    ]
    for expression in label_selector.get("matchExpressions") or []:
        operator = operators.get(expression.get("operator"))
        if operator is None:
            raise selectors.InvalidSelector(
                f"unknown operator {expression.get('operator')!r}", selector=str(label_selector)
            )
        values = tuple(str(v) for v in expression.get("values") or ())
        requirements.append(selectors.Requirement(str(expression.get("key")), operator, values))
    return selectors.Selector(tuple(requirements)) if requirements else selectors.EVERYTHING


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _meta(obj)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (_meta(obj).get("labels") or {}).items()}


def _controller(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    references = _meta(obj).get("ownerReferences") or []
    for reference in references:
        if reference.get("controller"):
            return str(reference.get("kind")), str(reference.get("name"))
    return None


def pod_from_object(obj: Mapping[str, Any]) -> cluster.ClusterPod:
    namespace, name = _key(obj)
    return cluster.ClusterPod(
        namespace, name, str(_meta(obj).get("uid") or ""), _labels(obj), _controller(obj)
    )


def workload_from_object(group_resource: str, obj: Mapping[str, Any]) -> cluster.Workload:
    """A Deployment (``spec.selector`` is a LabelSelector) or Service (``spec.selector`` is a
    map; none selects no pod). A selector that does not parse selects no pod."""
    namespace, name = _key(obj)
    spec = obj.get("spec") or {}
    selector: selectors.Selector | None
    try:
        if group_resource == resources.SERVICES.group_resource:
            raw = spec.get("selector") or {}
            selector = selector_from_label_selector({"matchLabels": raw}) if raw else None
        else:
            selector = selector_from_label_selector(spec.get("selector"))
    except selectors.InvalidSelector as error:
        logger.warning(
            "%s %s/%s: its selector selects nothing: %s", group_resource, *_key(obj), error
        )
        selector = None
    return cluster.Workload(group_resource, namespace, name, _labels(obj), selector)


class ClusterView:
    """Pods, replica sets, deployments and services as the informers last saw them.

    ``apply`` is the informers' ``Deliver`` for each kind; queries implement
    ``cluster.PodView``. Event-loop only.
    """

    def __init__(self, on_pod_gone: Callable[[PodRef, str], object] | None = None) -> None:
        self.on_pod_gone = on_pod_gone
        self._pods: dict[str, dict[str, cluster.ClusterPod]] = {}
        self._replica_sets: dict[tuple[str, str], str | None] = {}
        self._workloads: dict[str, dict[str, dict[str, cluster.Workload]]] = {
            resources.DEPLOYMENTS.group_resource: {},
            resources.SERVICES.group_resource: {},
        }
        self.synced: set[str] = set()
        self.ready = asyncio.Event()

    def deliver(self, kind: Kind) -> Deliver:
        """The ``Deliver`` callback for an informer of ``kind``."""

        def apply(event_type: str, payload: Any) -> None:
            try:
                self._apply(kind, event_type, payload)
            except (AttributeError, TypeError, ValueError) as error:
                logger.warning(
                    "%s: ignoring a malformed %s event: %s", kind.name, event_type, error
                )
            if event_type == SYNC and kind.name not in self.synced:
                self.synced.add(kind.name)
                if self.synced >= {k.name for k in VIEW_KINDS}:
                    self.ready.set()

        return apply

    def _apply(self, kind: Kind, event_type: str, payload: Any) -> None:
        if kind is PODS:
            self._apply_pods(event_type, payload)
        elif kind is REPLICA_SETS:
            if event_type == SYNC:
                self._replica_sets = {}
                for obj in payload:
                    self._replica_sets[_key(obj)] = self._deployment_owner(obj)
            elif event_type == "DELETED":
                self._replica_sets.pop(_key(payload), None)
            else:
                self._replica_sets[_key(payload)] = self._deployment_owner(payload)
        else:
            group_resource = (
                resources.DEPLOYMENTS.group_resource
                if kind is DEPLOYMENTS
                else resources.SERVICES.group_resource
            )
            table = self._workloads[group_resource]
            if event_type == SYNC:
                table.clear()
                for obj in payload:
                    self._put_workload(table, workload_from_object(group_resource, obj))
            elif event_type == "DELETED":
                namespace, name = _key(payload)
                table.get(namespace, {}).pop(name, None)
            else:
                self._put_workload(table, workload_from_object(group_resource, payload))

    @staticmethod
    def _deployment_owner(obj: Mapping[str, Any]) -> str | None:
        owner = _controller(obj)
        return owner[1] if owner is not None and owner[0] == "Deployment" else None

    @staticmethod
    def _put_workload(table: dict[str, dict[str, cluster.Workload]], w: cluster.Workload) -> None:
        table.setdefault(w.namespace, {})[w.name] = w

    def _apply_pods(self, event_type: str, payload: Any) -> None:
        if event_type == SYNC:
            fresh = [pod_from_object(obj) for obj in payload]
            current = {(p.namespace, p.name): p for p in fresh}
            for pod in list(self.pods(None)):
                now = current.get((pod.namespace, pod.name))
                if now is None or now.uid != pod.uid:
                    self._gone(pod)
            self._pods = {}
            for pod in fresh:
                self._pods.setdefault(pod.namespace, {})[pod.name] = pod
            return
        pod = pod_from_object(payload)
        namespace = self._pods.setdefault(pod.namespace, {})
        old = namespace.get(pod.name)
        if event_type == "DELETED":
            if old is not None and old.uid == pod.uid:
                del namespace[pod.name]
                self._gone(old)
            return
        if old is not None and old.uid != pod.uid:
            self._gone(old)
        namespace[pod.name] = pod

    def _gone(self, pod: cluster.ClusterPod) -> None:
        logger.info(
            "pod %s/%s (uid %s) is gone; dropping its data", pod.namespace, pod.name, pod.uid
        )
        if self.on_pod_gone is not None:
            self.on_pod_gone(PodRef(pod.namespace, pod.name), pod.uid)

    # -- cluster.PodView ---------------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> cluster.ClusterPod | None:
        return self._pods.get(namespace, {}).get(name)

    def pods(self, namespace: str | None) -> Iterator[cluster.ClusterPod]:
        if namespace is not None:
            yield from self._pods.get(namespace, {}).values()
            return
        for pods in self._pods.values():
            yield from pods.values()

    def deployment_of(self, pod: cluster.ClusterPod) -> str | None:
        if pod.owner is None:
            return None
        kind, name = pod.owner
        if kind == "ReplicaSet":
            return self._replica_sets.get((pod.namespace, name))
        return None

    def workload(self, group_resource: str, namespace: str, name: str) -> cluster.Workload | None:
        return self._workloads.get(group_resource, {}).get(namespace, {}).get(name)

    def workloads(self, group_resource: str, namespace: str | None) -> Iterable[cluster.Workload]:
        table = self._workloads.get(group_resource, {})
        if namespace is not None:
            return list(table.get(namespace, {}).values())
        return [w for by_name in table.values() for w in by_name.values()]


@contextlib.asynccontextmanager
async def informing(
    client: KubeClient,
    subscriptions: Sequence[tuple[Kind, Deliver]],
    resync_seconds: float,
) -> AsyncIterator[list[Informer]]:
    """Run one informer per (kind, deliver) until the block ends; yields the informers."""
    loop = asyncio.get_running_loop()
    informers = [
        Informer(client, kind, deliver, loop, resync_seconds) for kind, deliver in subscriptions
    ]
    for informer in informers:
        informer.start()
    try:
        yield informers
    finally:
        await asyncio.gather(*(asyncio.to_thread(i.stop) for i in informers))
