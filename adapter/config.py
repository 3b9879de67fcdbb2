"""The adapter's configuration as frozen dataclasses.

``adapter.__main__`` builds these from flags; below it nobody reads ``argv`` or the environment.
``validate()`` returns every problem at once, as the Kubernetes ``Options.Validate`` does.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapter import eventloop
from adapter.transport import bearer_token_problem

DEFAULT_SERVICE_NAME = "inference-metrics-adapter"
DEFAULT_SERVICE_NAMESPACE = "metrics"
POD_BUDGET_BASE_BYTES = 64 * 1024
POD_BUDGET_BYTES_PER_WINDOW_SECOND = 32 * 1024
"""The default pod memory budget: 1 MiB for the default 30 s window. A pod pushing every bin
there is (1,728) once a second, with 64 labels of the greatest size, holds about 420 KB."""
MIN_POD_BUDGET_BYTES = 64 * 1024
"""Room for the largest report a pod may send (64 labels of the greatest size, 1,728 bins)."""


@dataclass(frozen=True)
class TlsConfig:
    """Serving and client-verification material."""

    cert_dir: Path = Path("apiserver.local.config/certificates")
    """Where generated certificates live when no cert/key files are given (Kubernetes' default)."""
    cert_file: Path | None = None
    """PEM serving certificate (chain); re-read when it changes on disk."""
    key_file: Path | None = None
    """PEM private key of ``cert_file``."""
    client_ca_file: Path | None = None
    """CA for x509 client certificates; by default the CA generated in ``cert_dir``."""
    service_name: str = DEFAULT_SERVICE_NAME
    """Service name for the generated certificate's ``<service>.<namespace>.svc`` SAN."""
    service_namespace: str = DEFAULT_SERVICE_NAMESPACE
    """Namespace for that SAN."""
    reload_interval_seconds: float = 1.0
    """How often the certificate files are checked for changes."""


@dataclass(frozen=True)
class StoreConfig:
    """How long pushed data counts."""

    window_seconds: float = 30.0
    """Latency quantiles and request rates cover the reports received within this window."""
    max_age_seconds: float = 10.0
    """A pod whose last applied report is older than this is not served."""
    slice_seconds: float = 1.0
    """Width of one time slice of the window."""
    rate_window_seconds: float = 10.0
    """The arrival rate of ``inference_required_replicas`` covers this span: shorter than the
    latency window, so that it moves first (``adapter.rates``)."""
    pod_memory_budget_bytes: int | None = None
    """The most memory one pod may hold, its labels and the latencies of its window (estimated:
    ``adapter.store.PodRecord.held_bytes``); a push that would take it past is refused. None:
    ``POD_BUDGET_BYTES_PER_WINDOW_SECOND`` for each second of the window, plus
    ``POD_BUDGET_BASE_BYTES``."""
    store_memory_budget_bytes: int | None = None
    """The most memory all pods together may hold; at it, a push that would grow its pod is
    refused. None: no bound (``adapter.__main__`` derives one from the memory limit)."""

    @property
    def forget_after_seconds(self) -> float:
        """Silent pods are dropped from memory after this long (both horizons, doubled)."""
        return 2 * max(self.window_seconds, self.max_age_seconds)

    @property
    def pod_budget_bytes(self) -> int:
        """``pod_memory_budget_bytes``, or the default for this window."""
        if self.pod_memory_budget_bytes is not None:
            return self.pod_memory_budget_bytes
        return POD_BUDGET_BASE_BYTES + math.ceil(
            POD_BUDGET_BYTES_PER_WINDOW_SECOND * self.window_seconds
        )

    @property
    def total_budget_bytes(self) -> int | None:
        """``store_memory_budget_bytes`` (a shorter name for the store's use)."""
        return self.store_memory_budget_bytes


@dataclass(frozen=True)
class ConnectionConfig:
    """How long a client may hold a connection without making progress.

    Every stall a client can cause has a bound, so slow or stalled clients cannot pile up: the TLS
    handshake, the wait for a complete request head (a new or an idle keep-alive connection),
    and a request's handling including the read of its body.
    """

    tls_handshake_timeout_seconds: float = 10.0
    """A TLS handshake (or the closing exchange) not done within this is dropped."""
    idle_timeout_seconds: float = 90.0
    """After the handshake and after each response, the next request head must arrive complete
    within this (kube-apiserver's ``IdleTimeout``); idle and stalled connections are closed."""
    request_timeout_seconds: float = 60.0
    """A request not answered within this gets a 504 ``Timeout`` (kube-apiserver's
    ``--request-timeout``); it bounds, above all, a body that trickles in."""
    write_timeout_seconds: float = 30.0
    """An answer not written out within this (the client stopped reading) drops the connection."""
    max_connections: int = 4096
    """Open connections at most; one more is closed at once, before its TLS handshake."""
    receiving_budget_bytes: int = 16 * 1024 * 1024
    """Bytes received of requests not yet whole (heads and bodies not yet complete), on all
    connections together; past it the connections holding the most are dropped
    (``adapter.serving.Connections``). No flag."""

    def validate(self) -> list[str]:
        problems = [
            f"{flag} must be positive"
            for flag, seconds in (
                ("--tls-handshake-timeout", self.tls_handshake_timeout_seconds),
                ("--idle-timeout", self.idle_timeout_seconds),
                ("--request-timeout", self.request_timeout_seconds),
                ("--write-timeout", self.write_timeout_seconds),
            )
            if seconds <= 0
        ]
        if self.max_connections < 1:
            problems.append("--max-connections must be at least 1")
        return problems


@dataclass(frozen=True)
class PushConfig:
    """Limits and credentials of the push endpoint."""

    token_file: Path | None = None
    """File holding the shared bearer token; generated in the cert dir when absent."""
    max_body_bytes: int = 256 * 1024
    max_labels: int = 64
    max_bins: int = 4096
    max_gauge_value: float = 1e15
    clock_skew_warning_seconds: float = 300.0
    max_inflight_pushes: int = 64
    """Pushes admitted and not yet answered at most; beyond, 429 (``adapter.admission``)."""
    max_pod_push_rate: float = 10.0
    """Pushes a second from one pod at most (bursts of as many); beyond, 429."""
    log_pushes: bool = False
    """Write an access line for every push (off: only refused ones are logged, rate-limited)."""

    def validate(self) -> list[str]:
        problems = []
        if self.max_inflight_pushes < 1:
            problems.append("--max-inflight-pushes must be at least 1")
        if not self.max_pod_push_rate > 0:
            problems.append("--max-pod-push-rate must be positive")
        return problems


DEFAULT_ALWAYS_ALLOW_PATHS = ("/healthz", "/readyz", "/livez")

SOURCES = ("push", "prometheus")
PROMETHEUS_MAX_AGE_SECONDS = 60.0
"""``--max-age`` in Prometheus mode unless given: four scrapes at Prometheus' default 15 s."""


@dataclass(frozen=True)
class PrometheusConfig:
    """``--source prometheus``: where the metrics engine is and how its series are labelled."""

    url: str | None = None
    """Base URL of a Prometheus-compatible query API (``/api/v1/query`` is appended)."""
    bearer_token_file: Path | None = None
    """Token sent as ``Authorization: Bearer``, read again when the file changes."""
    ca_file: Path | None = None
    """CA bundle that verifies an https URL (default: the system's)."""
    timeout_seconds: float = 5.0
    pod_label: str = "pod"
    namespace_label: str = "namespace"
    gauge_window_seconds: float = 15.0
    """Gauges are averaged over this (a scrape is a snapshot; pushes carry interval means)."""
    preset: str = "model-server"
    """Which servers' metrics (``adapter.prometheus.presets``): this project's model server by
    default."""
    generic_series: Mapping[str, str] = field(default_factory=dict)
    """With the ``generic`` preset: its series' names (``preset_flags.GENERIC`` keys)."""

    def validate(self) -> list[str]:
        # config is imported below these
        from adapter.prometheus import preset_flags
        from adapter.prometheus.promql import is_label_name

        problems = []
        try:
            preset_flags.build(self.preset, self.generic_series, "prometheus-")
        except ValueError as error:
            problems.append(str(error))
        if not self.url:
            problems.append("--prometheus-url is required with --source prometheus")
        elif not self.url.startswith(("http://", "https://")):
            problems.append(f"--prometheus-url {self.url!r} must start with http:// or https://")
        for flag, path in (
            ("--prometheus-bearer-token-file", self.bearer_token_file),
            ("--prometheus-ca-file", self.ca_file),
        ):
            if path is not None and not path.is_file():
                problems.append(f"{flag} {path}: no such file")
        problems += self._file_problems()
        for flag, seconds in (
            ("--prometheus-timeout", self.timeout_seconds),
            ("--prometheus-gauge-window", self.gauge_window_seconds),
        ):
            if seconds <= 0:
                problems.append(f"{flag} must be positive")
        for flag, label in (
            ("--prometheus-pod-label", self.pod_label),
            ("--prometheus-namespace-label", self.namespace_label),
        ):
            if not is_label_name(label):
                problems.append(f"{flag} {label!r} is not a Prometheus label name")
        return problems

    def _file_problems(self) -> list[str]:
        """A token the bearer header cannot carry, a CA file that is not one: said at start-up
        rather than as a 503 on every query (the token file is read again when it changes)."""
        problems = []
        token, ca = self.bearer_token_file, self.ca_file
        if token is not None and token.is_file():
            try:
                problem = bearer_token_problem(token.read_text().strip())
            except OSError as error:
                problem = f"cannot be read ({error.strerror})"
            if problem is not None:
                problems.append(f"--prometheus-bearer-token-file {token}: the token {problem}")
        if ca is not None and ca.is_file():
            try:
                ssl.create_default_context(cafile=str(ca))
            except (ssl.SSLError, OSError) as error:
                problems.append(f"--prometheus-ca-file {ca}: not a PEM CA bundle ({error})")
        return problems


@dataclass(frozen=True)
class ClusterConfig:
    """Cluster mode: delegated authentication and authorization, the cluster view.

    Flag names follow ``k8s.io/apiserver``'s delegating options.
    """

    enabled: bool = False
    """On when the adapter runs in a pod or gets ``--kubeconfig``; standalone otherwise."""
    kubeconfig: Path | None = None
    """The kubeconfig to reach kube-apiserver with; None in a pod: its service account."""
    always_allow_paths: tuple[str, ...] = DEFAULT_ALWAYS_ALLOW_PATHS
    """Paths served without authentication or authorization (``/x`` exact, ``/x/*`` prefix)."""
    token_cache_ttl_seconds: float = 10.0
    """How long a TokenReview answer (valid or not) is reused."""
    authorized_ttl_seconds: float = 10.0
    """How long an allowing SubjectAccessReview is reused."""
    unauthorized_ttl_seconds: float = 10.0
    """How long a denying SubjectAccessReview is reused."""
    requestheader_client_ca_file: Path | None = None
    """Replaces the ConfigMap's ``requestheader-client-ca-file``."""
    requestheader_allowed_names: tuple[str, ...] | None = None
    requestheader_username_headers: tuple[str, ...] | None = None
    requestheader_group_headers: tuple[str, ...] | None = None
    requestheader_extra_headers_prefix: tuple[str, ...] | None = None
    push_token_audience: str = DEFAULT_SERVICE_NAME
    """The audience of the projected service-account tokens pods push with."""
    allow_shared_push_token: bool = False
    """Also accept the shared push token of standalone mode (off: only pod-bound tokens)."""
    preflight: bool = True
    """Check the adapter's own RBAC permissions at start-up and exit naming a missing binding."""
    resync_seconds: float = 300.0
    """Every informer lists everything again this often."""
    sync_timeout_seconds: float = 60.0
    """Start-up fails if the informers have not listed everything within this time."""

    def validate(self) -> list[str]:
        problems = []
        for flag, seconds in (
            ("--authentication-token-webhook-cache-ttl", self.token_cache_ttl_seconds),
            ("--authorization-webhook-cache-authorized-ttl", self.authorized_ttl_seconds),
            ("--authorization-webhook-cache-unauthorized-ttl", self.unauthorized_ttl_seconds),
        ):
            if seconds < 0:
                problems.append(f"{flag} must not be negative")
        for flag, path in (
            ("--kubeconfig", self.kubeconfig),
            ("--requestheader-client-ca-file", self.requestheader_client_ca_file),
        ):
            if path is not None and not path.is_file():
                problems.append(f"{flag} {path}: no such file")
        if not self.push_token_audience:
            problems.append("--push-token-audience must not be empty")
        for path in self.always_allow_paths:
            if not path.startswith("/"):
                problems.append(f"--authorization-always-allow-paths: {path!r} must start with /")
        return problems


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``make_app`` and the runner need."""

    bind_address: str = "0.0.0.0"  # noqa: S104 - the Kubernetes default; the demo binds 127.0.0.1
    secure_port: int = 6443
    log_format: str = "text"
    event_loop: str = field(default_factory=eventloop.default)
    """``uvloop`` or ``asyncio`` (``adapter.eventloop``)."""
    warm_up_seconds: float = 2.0
    """``/readyz`` answers 503 for this long after start-up, time for every live pod to push to
    a replica that has no history yet (two push intervals)."""
    tls: TlsConfig = field(default_factory=TlsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    push: PushConfig = field(default_factory=PushConfig)
    connections: ConnectionConfig = field(default_factory=ConnectionConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    source: str = "push"
    """Where numbers come from: ``push`` (pods push to the adapter) or ``prometheus``."""
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)

    def validate(self) -> list[str]:
        """Every problem with this configuration, as one line each; empty when usable."""
        problems = []
        if not 0 <= self.secure_port <= 65535:
            problems.append(f"--secure-port {self.secure_port} is not a port number")
        if self.log_format not in ("text", "json"):
            problems.append(f"--log-format must be text or json, not {self.log_format!r}")
        loop_problem = eventloop.problem(self.event_loop)
        if loop_problem is not None:
            problems.append(loop_problem)
        if (self.tls.cert_file is None) != (self.tls.key_file is None):
            problems.append("--tls-cert-file and --tls-private-key-file go together")
        if self.store.window_seconds < self.store.slice_seconds:
            problems.append(f"--window must be at least {self.store.slice_seconds:g}s")
        if self.store.max_age_seconds <= 0:
            problems.append("--max-age must be positive")
        if not self.store.slice_seconds <= self.store.rate_window_seconds <= 300:
            problems.append(f"--rate-window must be from {self.store.slice_seconds:g}s to 5m")
        if self.store.pod_budget_bytes < MIN_POD_BUDGET_BYTES:
            problems.append(
                f"--pod-memory-budget must be at least {MIN_POD_BUDGET_BYTES // 1024}Ki, the room"
                " the largest report needs"
            )
        budget = self.store.store_memory_budget_bytes
        if budget is not None and budget < self.store.pod_budget_bytes:
            problems.append("--store-memory-budget must be at least the pod memory budget")
        if self.warm_up_seconds < 0:
            problems.append("--warm-up must not be negative")
        problems += self.connections.validate()
        problems += self.push.validate()
        for flag, path in (
            ("--tls-cert-file", self.tls.cert_file),
            ("--tls-private-key-file", self.tls.key_file),
            ("--client-ca-file", self.tls.client_ca_file),
            ("--push-token-file", self.push.token_file),
        ):
            if path is not None and not path.is_file():
                problems.append(f"{flag} {path}: no such file")
        if self.cluster.enabled:
            problems += self.cluster.validate()
        if self.source not in SOURCES:
            problems.append(f"--source must be push or prometheus, not {self.source!r}")
        if self.source == "prometheus":
            problems += self.prometheus.validate()
        return problems
