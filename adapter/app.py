"""The aiohttp application: the factory, the middlewares, the handlers.

``make_app(state)`` builds an application around an ``AdapterState`` (config, store, provider,
credentials, telemetry, clock): tests and ``adapter.__main__`` call the same factory. Handlers
only translate between HTTP and ``adapter.api`` / ``adapter.push`` / the store; every failure is
an ``ApiError`` that the error middleware turns into a Kubernetes ``Status``.

Two security modes share the handlers:
- *standalone* (``state.cluster is None``): queries need a client certificate from the client CA,
  pushes the shared token.
- *cluster* (``state.cluster`` set, see ``adapter.incluster``): every request but the always-allowed
  paths is authenticated by ``adapter.kubeauth`` (front proxy, x509, TokenReview, anonymous) and
  authorized by a SubjectAccessReview; a push carries the pod's projected service-account token
  and may only report for that pod, which must exist in the cluster view.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapter import (
    admission,
    api,
    background,
    clientcerts,
    cluster,
    errors,
    garbage,
    kubeauth,
    logs,
    push,
    rejections,
    serving,
    store,
)
from adapter.config import ServerConfig
from adapter.provider import MetricsProvider, timestamps_of
from adapter.report import Report
from adapter.telemetry import Telemetry
from adapter.transport import PushToken, ServingTls, User, peer_chain_der

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("adapter.access")
push_logger = logging.getLogger("adapter.push")

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
PUSH_PATH = "/push/v1"
SWEEP_INTERVAL_SECONDS = 5.0
MAX_DRAIN_BYTES = 4 * 1024 * 1024
"""An oversized push is read and discarded up to this much, so its client receives the 413."""
RETRY_AFTER_SECONDS = 10
CLIENT_CLOSED_REQUEST = 499
"""The status logged and counted for a request that ended without an answer: its client went
away (or the server stopped) first. nginx's code; never sent, as nobody is left to read it."""


@dataclass
class ClusterMode:
    """What cluster mode adds to an application (``adapter.incluster`` assembles it)."""

    authenticator: kubeauth.Authenticator
    authorizer: kubeauth.Authorizer
    view: cluster.PodView | None = None
    """The cluster's pods; pushes for pods it lacks are refused. None: no such check."""
    push_audience: str = "inference-metrics-adapter"
    """The audience a pod's projected push token must be issued for."""
    allow_shared_push_token: bool = False
    """Also accept the shared push token (``state.push_token``), as standalone does."""
    lifetime: Callable[[], AbstractAsyncContextManager[None]] | None = None
    """Background work for the application's lifetime: the ConfigMap watch, the informers."""


@dataclass
class AdapterState:
    """Everything the handlers share. One per application; no module globals."""

    config: ServerConfig
    store: store.Store
    provider: MetricsProvider
    push_token: PushToken | None
    """The shared push token; None in cluster mode unless it is explicitly allowed."""
    clock: Callable[[], float] = time.time
    tls: ServingTls | None = None
    cluster: ClusterMode | None = None
    """None: standalone security. Set: delegated authentication and authorization."""
    client_certificates: clientcerts.ClientCertificates | None = None
    """Standalone: judges each query's client certificate. None: no certificate is accepted."""
    telemetry: Telemetry = field(init=False)
    known_pods: push.KnownPods = field(init=False)
    """Pod sections of earlier pushes, so a pod's identity is validated once."""
    pushes_in_flight: admission.InFlight = field(init=False)
    pod_push_rates: admission.PodRates = field(init=False)
    rejections: rejections.RejectionLog = field(init=False)
    """Which refused pushes get a log line."""
    busy: errors.ApiError = field(init=False)
    """The 429 of a push beyond ``--max-inflight-pushes``, and its body, made once."""
    busy_body: bytes = field(init=False)
    connections: serving.Connections = field(init=False)
    """The open connections (``adapter.serving`` admits and counts them)."""
    gc_pauses: garbage.Pauses = field(init=False)

    def __post_init__(self) -> None:
        self.telemetry = Telemetry(
            lambda: len(self.store),
            lambda: self.store.held_bytes,
            self.store.config.total_budget_bytes,
        )
        self.known_pods = push.KnownPods(self.store.max_pods)
        self.pushes_in_flight = admission.InFlight(self.config.push.max_inflight_pushes)
        self.telemetry.track_pushes_in_flight(lambda: self.pushes_in_flight.count)
        self.pod_push_rates = admission.PodRates(
            self.config.push.max_pod_push_rate, self.store.max_pods
        )
        self.rejections = rejections.RejectionLog()
        self.busy = errors.too_many_requests(
            f"the adapter is busy: {self.config.push.max_inflight_pushes} pushes are in flight"
            " (--max-inflight-pushes); merge this report into the next one",
            retry_after=admission.retry_after_header(1),
        )
        self.busy_body = json.dumps(self.busy.status_body(), separators=(",", ":")).encode()
        self.connections = serving.Connections(self.config.connections)
        self.telemetry.track_connections(self.connections)
        self.gc_pauses = garbage.Pauses()
        self.telemetry.track_gc_pauses(self.gc_pauses, garbage.PAUSE_BUCKETS)

    def forget_silent_pods(self, now: float) -> int:
        """Sweep the store, and forget what the push path remembers of the pods it dropped."""
        forgotten = self.store.sweep(now)
        self.known_pods.retain(self.store.has)
        self.pod_push_rates.retain(lambda pod: self.store.has(*pod))
        return forgotten


STATE = web.AppKey("state", AdapterState)
USER = web.RequestKey("user", User)
SHED = web.RequestKey("shed", errors.ApiError)
"""The refusal of a push answered without raising it (shed beyond ``--max-inflight-pushes``)."""
PUSHER = web.RequestKey("pusher", str)
"""Who made a refused push (``namespace/name``, empty when unknown), for the refusal log."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response with the explicit ``application/json`` type clients decode by."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def status_response(error: errors.ApiError) -> web.Response:
    """The ``Status`` document of an error, with its code and headers."""
    return json_response(error.status_body(), error.code, error.headers or None)


_HTTP_REASONS = {
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestEntityTooLarge",
    400: "BadRequest",
}


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> errors.ApiError:
    if exc.status == 405:
        return errors.method_not_allowed(request.method, request.path)
    if exc.status == 404:
        return errors.not_found(f"the server could not find the requested resource {request.path}")
    reason = _HTTP_REASONS.get(exc.status, exc.reason.replace(" ", ""))
    return errors.ApiError(exc.status, reason, exc.text or exc.reason)


def credentials(request: web.Request) -> kubeauth.Credentials:
    """The TLS chain and headers a request presents."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    tls = request.app[STATE].tls
    chain = tls.presented_chain(ssl_object) if tls is not None else peer_chain_der(ssl_object)
    return kubeauth.Credentials(chain, list(request.headers.items()))


async def authenticate(state: AdapterState, request: web.Request) -> None:
    """Who asks, and may they? Raises ``ApiError`` if not. Pushes check their own token
    (``post_push``), so the caller skips them.

    Standalone: a client certificate valid now, from a CA of the client CA file (checked on every
    request, see ``adapter.clientcerts``), health open. Cluster: ``adapter.kubeauth``
    authenticates, a SubjectAccessReview authorizes; the always-allowed paths skip both.
    """
    mode = state.cluster
    if mode is None:
        if request.path in OPEN_PATHS:
            return
        request[USER] = _certificate_user(state, request)
        return
    if mode.authorizer.always_allowed(request.path):
        return
    user = await mode.authenticator.authenticate(credentials(request))
    request[USER] = user
    attributes = kubeauth.request_attributes(request.method, request.path, request.query)
    await mode.authorizer.authorize(user, attributes)


def _certificate_user(state: AdapterState, request: web.Request) -> User:
    """The standalone user of a request's client certificate; 401 without a good one."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    try:
        user = state.client_certificates.user(ssl_object) if state.client_certificates else None
    except clientcerts.CertificateRejected as rejected:
        raise errors.unauthorized(f"Unauthorized: {rejected}") from rejected
    if user is None:
        raise errors.unauthorized()
    return user


def request_middleware(state: AdapterState, deadlines: serving.RequestDeadlines) -> Middleware:
    """The one middleware every request passes: the request deadline, authentication, errors
    as ``Status`` answers, then one metrics observation and the request's log line.

    One layer rather than four (access log, errors, authentication, deadline): each layer is a
    coroutine and a call per request, a real share of a push's CPU. The deadline covers
    authentication too (TokenReview and SubjectAccessReview calls in cluster mode). An
    ``ApiError``, an ``HTTPException`` of 400 or more or an unexpected exception (logged once,
    here) leaves as a ``Status``. A request whose client went away (its connection lost, or a
    cancellation that is not the deadline's) is logged and counted as 499 and its cancellation
    propagates; an ``HTTPException`` below 400 propagates with its own status.

    Log lines: every request but a push writes its access line (never credentials). A push is
    counted in ``adapter_pushes_total`` and writes an access line only with ``--log-pushes``;
    a refused push is logged through ``RejectionLog`` (at most once per reason and pusher a
    minute).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        error: errors.ApiError | None = None
        try:
            task = deadlines.begin()
            try:
                try:
                    if request.path != PUSH_PATH:
                        await authenticate(state, request)
                    response = await handler(request)
                except asyncio.CancelledError:
                    timeout = deadlines.timed_out(task)
                    if timeout is None:
                        status = CLIENT_CLOSED_REQUEST
                        raise
                    response = status_response(timeout)
                    error = timeout
                finally:
                    deadlines.end(task)
            except errors.ApiError as caught:
                error = caught
                response = status_response(error)
            except web.HTTPException as exc:
                if exc.status < 400:
                    status = exc.status
                    raise
                error = _from_http_exception(request, exc)
                response = status_response(error)
            except Exception as exc:
                if isinstance(exc, ConnectionError) and _client_gone(request):
                    status = CLIENT_CLOSED_REQUEST  # nobody to answer: aiohttp drops it
                    return web.Response(status=status, reason="Client Closed Request")
                logger.exception("unhandled error answering %s %s", request.method, request.path)
                error = errors.internal_error()
                response = status_response(error)
            status = response.status
            return response
        finally:
            _record(state, request, status, time.perf_counter() - started, error)

    return middleware


def _record(
    state: AdapterState,
    request: web.Request,
    status: int,
    seconds: float,
    error: errors.ApiError | None,
) -> None:
    """A request's metrics observation and log line (see ``request_middleware``)."""
    route = request.match_info.route.name or "unmatched"
    state.telemetry.observe_request(route, status, seconds)
    if route == "push":
        if status != 200:  # post_push counts what it answers with a 200
            _refused_push(state, request, status, error or request.get(SHED))
        if not state.config.push.log_pushes:
            return
    user = request.get(USER)
    logs.access(
        access_logger,
        request.method,
        request.path_qs,
        status,
        seconds,
        user.name if user else None,
        request.remote,
    )


def _client_gone(request: web.Request) -> bool:
    """Whether the request's connection is lost (a ``ConnectionError`` then is the client's)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _refused_push(
    state: AdapterState, request: web.Request, status: int, error: errors.ApiError | None
) -> None:
    """Count one refused push, and log it if ``RejectionLog`` says so."""
    reason = error.reason if error is not None else "ClientClosedRequest"
    state.telemetry.count_push("rejected", reason)
    pusher = request.get(PUSHER) or f"client {request.remote}"
    logged = state.rejections.note(reason, pusher, time.monotonic())
    if logged is None:
        return
    pusher, suppressed = logged
    message = error.message if error is not None else "the client went away before the answer"
    push_logger.warning(
        "push from %s refused: %d %s: %s%s",
        pusher,
        status,
        reason,
        message,
        f" ({suppressed} more refused for this reason in the last"
        f" {state.rejections.interval_seconds:g}s, not logged)"
        if suppressed
        else "",
    )


def log_suppressed_refusals(state: AdapterState) -> None:
    """A closing line for each (reason, pusher) whose minute ended with refusals not logged."""
    for reason, pusher, suppressed in state.rejections.expired(time.monotonic()):
        push_logger.warning(
            "push from %s refused: %s, %d more times in the last %gs (not logged one by one)",
            pusher,
            reason,
            suppressed,
            state.rejections.interval_seconds,
        )


# -- handlers ----------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """``/healthz``, ``/livez``: the process answers, so it is up."""
    return web.Response(text="ok")


async def ready(request: web.Request) -> web.Response:
    """``/readyz``: 503 during the warm-up after start-up, 200 after.

    A replica that starts holds no pod's data; the warm-up gives every live pod time to push
    to it before the aggregator's endpoints send it queries (``--warm-up``).
    """
    state = request.app[STATE]
    since = state.store.receiving_since
    warm_up = state.config.warm_up_seconds
    left = warm_up if since is None else warm_up - (state.clock() - since)
    if left > 0:
        return web.Response(
            status=503,
            text=f"warming up: {left:.1f}s of the {warm_up:g}s warm-up left, for every live pod"
            " to push here",
        )
    return web.Response(text="ok")


async def get_api_groups(request: web.Request) -> web.Response:
    return json_response(api.api_group_list())


async def get_api_group(request: web.Request) -> web.Response:
    return json_response(api.api_group(request.match_info["group"]))


async def get_resource_list(request: web.Request) -> web.Response:
    group, version = request.match_info["group"], request.match_info["version"]
    api.check_group_version(group, version)
    provider = request.app[STATE].provider
    if group == api.EXTERNAL_GROUP:
        return json_response(api.external_resource_list(provider.list_all_external_metrics()))
    return json_response(api.custom_resource_list(version, provider.list_all_metrics()))


def _observe_age(state: AdapterState, timestamps: Sequence[float]) -> None:
    """Record the age of the oldest data in an answer (one observation per answer)."""
    if len(timestamps):
        state.telemetry.served_data_age.observe(max(0.0, state.clock() - min(timestamps)))


async def get_custom_metric(request: web.Request) -> web.Response:
    version = request.match_info["version"]
    api.check_group_version(api.CUSTOM_GROUP, version)
    query = api.parse_custom_path(request.match_info["tail"])
    selector = api.parse_selector_param(request.query.get("labelSelector"), "labelSelector")
    metric_selector = api.parse_selector_param(
        request.query.get("metricLabelSelector"), "metricLabelSelector"
    )
    state = request.app[STATE]
    if query.name is None:
        values = await state.provider.get_metric_by_selector(
            query.info, query.namespace, selector, metric_selector
        )
    else:
        values = [
            await state.provider.get_metric_by_name(
                query.info, query.namespace, query.name, metric_selector
            )
        ]
    _observe_age(state, timestamps_of(values))
    return web.Response(
        body=api.custom_value_list(version, values), content_type="application/json"
    )


async def get_external_metric(request: web.Request) -> web.Response:
    namespace, metric = api.parse_external_path(request.match_info["tail"])
    selector = api.parse_selector_param(request.query.get("labelSelector"), "labelSelector")
    state = request.app[STATE]
    values = await state.provider.get_external_metric(namespace, metric, selector)
    _observe_age(state, [v.timestamp for v in values])
    return json_response(api.external_value_list(values))


async def get_openapi_v2(request: web.Request) -> web.Response:
    return json_response(api.OPENAPI_V2)


async def get_metrics(request: web.Request) -> web.Response:
    registry = request.app[STATE].telemetry.registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def _read_limited(request: web.Request, limit: int) -> bytes:
    """The body, or a 413 once it passes ``limit`` (the rest is drained, bounded)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        await _drain(request)
        raise errors.request_too_large(limit)
    if declared is not None and hdrs.CONTENT_ENCODING not in request.headers:
        return await request.read()  # the declared length bounds it: the common case
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            await _drain(request)
            raise errors.request_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(request: web.Request) -> None:
    drained = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        drained += len(chunk)
        if drained > MAX_DRAIN_BYTES:
            break


async def _push_identity(state: AdapterState, request: web.Request) -> kubeauth.PodBinding | None:
    """Who pushes: the pod bound to the token (cluster mode), or None for the shared token."""
    authorization = request.headers.get("Authorization")
    mode = state.cluster
    if mode is None or (mode.allow_shared_push_token and state.push_token is not None):
        if state.push_token is not None and state.push_token.accepts(authorization):
            return None
        if mode is None:
            error = errors.unauthorized("a push needs the bearer token of --push-token-file")
            error.headers["WWW-Authenticate"] = "Bearer"
            raise error
    assert mode is not None
    return await mode.authenticator.authenticate_pod(credentials(request), mode.push_audience)


def _check_pusher(mode: ClusterMode, binding: kubeauth.PodBinding | None, report: Report) -> None:
    """A pod reports only for itself, and only for a pod that exists (cluster mode)."""
    pod = report.pod
    if binding is not None and (
        pod.namespace != binding.namespace or pod.name != binding.name or report.uid != binding.uid
    ):
        raise errors.forbidden(
            f"pod {binding} (uid {binding.uid}) may push only for itself, not for pod {pod}"
            f" (uid {report.uid})"
        )
    if mode.view is None:
        return
    known = mode.view.pod(pod.namespace, pod.name)
    if known is None:
        raise errors.forbidden(f"pod {pod} does not exist in the cluster")
    if known.uid != report.uid:
        raise errors.forbidden(
            f"pod {pod} has uid {known.uid} in the cluster, not {report.uid}: a report for a"
            " pod that no longer exists"
        )


_ACCEPTED_BODY = b'{"accepted":true}'
_DUPLICATE_BODY = b'{"accepted":false,"duplicate":true}'
"""The push answers, encoded once (``json_response`` of the same objects writes these bytes)."""


async def post_push(request: web.Request) -> web.Response:
    """``POST /push/v1``: one pod's report (docs/push-protocol.md).

    Admitted only while fewer than ``--max-inflight-pushes`` are in flight, and then applied
    one event-loop turn later, so that queries that arrived with it go first
    (``adapter.admission``); a pod pushing faster than ``--max-pod-push-rate`` is refused.
    A push that is answered 200 is counted here, a refused one by the request middleware."""
    state = request.app[STATE]
    in_flight = state.pushes_in_flight
    if not in_flight.enter():  # the cheapest answer there is: shedding must cost little
        state.telemetry.count_shed("in_flight")
        request[SHED] = state.busy
        return web.Response(
            status=429,
            body=state.busy_body,
            content_type="application/json",
            headers=state.busy.headers,
        )
    binding: kubeauth.PodBinding | None = None
    body = b""
    report: Report | None = None
    try:
        await asyncio.sleep(0)  # the requests that arrived with this one start first
        binding = await _push_identity(state, request)
        if request.headers.get(hdrs.CONTENT_TYPE) != "application/json":  # else parse it
            push.check_content_type(request.content_type)
        body = await _read_limited(request, state.config.push.max_body_bytes)
        report = push.decode_report(body, state.config.push, state.known_pods)
        now = state.clock()
        outcome = _apply_push(state, binding, report, now)
    except errors.ApiError:
        request[PUSHER] = _pusher(binding, report, body)
        raise
    finally:
        in_flight.leave()
    if (
        report.pod_timestamp is not None
        and abs(report.pod_timestamp - now) > state.config.push.clock_skew_warning_seconds
    ):
        state.telemetry.clock_skew.inc()
        logger.debug("pod %s pushes with a clock %.0fs off", report.pod, report.pod_timestamp - now)
    if outcome is store.Applied.DUPLICATE:
        state.telemetry.count_push("duplicate", "")
        return web.Response(body=_DUPLICATE_BODY, content_type="application/json")
    state.telemetry.count_push("accepted", outcome.value)
    state.telemetry.count_reported_requests(report.completed_requests)
    return web.Response(body=_ACCEPTED_BODY, content_type="application/json")


def _apply_push(
    state: AdapterState, binding: kubeauth.PodBinding | None, report: Report, now: float
) -> store.Applied:
    """The checks after decoding (who may push it, the pod's rate), then the store."""
    if state.cluster is not None:
        _check_pusher(state.cluster, binding, report)
    wait = state.pod_push_rates.admit(report.pod, time.monotonic())
    if wait is not None:
        state.telemetry.count_shed("pod_rate")
        raise errors.too_many_requests(
            f"pod {report.pod} pushes more than {state.config.push.max_pod_push_rate:g}"
            " times a second (--max-pod-push-rate)",
            retry_after=admission.retry_after_header(wait),
        )
    try:
        outcome = state.store.apply(report, now)
    except store.StoreFull as full:
        state.telemetry.count_shed("pods_tracked")
        raise errors.too_many_requests(str(full), retry_after=str(RETRY_AFTER_SECONDS)) from full
    except store.OverBudget as over:
        state.telemetry.count_shed("memory_budget")
        raise errors.too_many_requests(
            str(over), retry_after=str(over.retry_after_seconds)
        ) from over
    state.known_pods.remember_last()  # only now: a refused push leaves nothing cached
    return outcome


def _pusher(binding: kubeauth.PodBinding | None, report: Report | None, body: bytes) -> str:
    """Who a refused push came from, for the refusal log: the pod its token is bound to, else
    the pod its report (or, when it did not decode, its body) names; empty when unknown."""
    if binding is not None:
        return str(binding)
    pod = report.pod if report is not None else push.pod_named_in(body)
    return str(pod) if pod is not None else ""


async def push_disabled(request: web.Request) -> web.Response:
    """``POST /push/v1`` when the metrics come from Prometheus: a 404 that says so."""
    raise errors.not_found(
        "pushes are off: this adapter reads its metrics from Prometheus (--source prometheus)"
    )


# -- lifetimes ---------------------------------------------------------------------------------


async def sweeper_context(app: web.Application) -> AsyncIterator[None]:
    """Forget silent pods periodically, so memory stays bounded under pod churn."""
    state = app[STATE]

    def sweep() -> None:
        forgotten = state.forget_silent_pods(state.clock())
        log_suppressed_refusals(state)
        if forgotten:
            logger.info(
                "forgot %d pods silent for over %gs",
                forgotten,
                state.config.store.forget_after_seconds,
            )

    async with background.running(background.every(SWEEP_INTERVAL_SECONDS, sweep)):
        yield


async def log_flusher_context(app: web.Application) -> AsyncIterator[None]:
    """Write out the access lines that wait in the log handler, periodically."""
    async with background.running(
        background.every(logs.FLUSH_INTERVAL_SECONDS, logs.flush_pending)
    ):
        yield
    logs.flush_pending()


async def certificate_reloader_context(app: web.Application) -> AsyncIterator[None]:
    """Watch the serving certificate files (and standalone's client CA file) and load them
    again when they change."""
    state = app[STATE]
    tls = state.tls
    if tls is None:
        yield
        return
    client_certificates = state.client_certificates

    def reload() -> None:
        tls.reload_if_changed()
        if client_certificates is not None:
            client_certificates.reload_if_changed()

    async with background.running(
        background.every(state.config.tls.reload_interval_seconds, reload)
    ):
        yield


async def start_receiving(app: web.Application) -> None:
    """Note when pushes can start to arrive: after every cleanup context (in cluster mode,
    the informers' first listing), just before the server listens. Windows and the warm-up
    count from here."""
    state = app[STATE]
    state.store.start_receiving(state.clock())


async def cluster_context(app: web.Application) -> AsyncIterator[None]:
    """Cluster mode's background work (ConfigMap watch, informers) for the app's lifetime."""
    mode = app[STATE].cluster
    if mode is None or mode.lifetime is None:
        yield
        return
    async with mode.lifetime():
        yield


def make_app(state: AdapterState) -> web.Application:
    """The adapter's application around ``state``."""
    logs.tame_client_mistakes()
    deadlines = serving.RequestDeadlines(state.config.connections.request_timeout_seconds)
    app = web.Application(
        middlewares=[request_middleware(state, deadlines)],
        client_max_size=state.config.push.max_body_bytes,
    )
    app[STATE] = state
    app[serving.CONNECTIONS] = state.connections
    router = app.router
    for path in sorted(OPEN_PATHS):
        router.add_get(path, ready if path == "/readyz" else health, name=path.strip("/"))
    # Discovery answers with or without a trailing slash: client-go asks for "/apis/".
    router.add_get("/apis{slash:/?}", get_api_groups, name="apis")
    router.add_get("/apis/{group}{slash:/?}", get_api_group, name="api_group")
    router.add_get("/apis/{group}/{version}{slash:/?}", get_resource_list, name="resource_list")
    router.add_get(
        "/apis/custom.metrics.k8s.io/{version}/{tail:.+}", get_custom_metric, name="custom_metric"
    )
    router.add_get(
        "/apis/external.metrics.k8s.io/v1beta1/{tail:.+}",
        get_external_metric,
        name="external_metric",
    )
    router.add_get("/openapi/v2", get_openapi_v2, name="openapi_v2")
    router.add_get("/metrics", get_metrics, name="metrics")
    pushes_on = state.config.source == "push"
    router.add_post(PUSH_PATH, post_push if pushes_on else push_disabled, name="push")
    app.cleanup_ctx.append(deadlines.lifetime)
    app.cleanup_ctx.append(state.connections.lifetime)
    app.cleanup_ctx.append(state.gc_pauses.lifetime)
    app.cleanup_ctx.append(sweeper_context)
    app.cleanup_ctx.append(log_flusher_context)
    app.cleanup_ctx.append(certificate_reloader_context)
    app.cleanup_ctx.append(cluster_context)
    app.on_startup.append(start_receiving)
    return app
