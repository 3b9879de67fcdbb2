"""``inference-adapter``: the command line. Flags become config dataclasses here and nowhere else.

Subcommands:
  serve         run the adapter (TLS always; certificates generated on first start if not given)
  certs client  issue a client certificate (and optionally a kubeconfig) from the generated CA
  demo          the closed loop on this machine (docs/demo.md)
  simulate      the what-if simulator: HPA manifests against a trace, in virtual time
  relay         a sidecar that pushes for a real server (vLLM, Triton, ...) from its /metrics

``serve`` runs in cluster mode (delegated authentication and authorization, informers) when it
runs in a pod or gets ``--kubeconfig``, and standalone otherwise; ``--mode`` forces either.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from aiohttp import web

from adapter import certs, clientcerts, durations, eventloop, heap, memorylimit, quantity
from adapter.app import AdapterState, make_app
from adapter.client import relay
from adapter.cluster import PodView
from adapter.config import (
    DEFAULT_ALWAYS_ALLOW_PATHS,
    DEFAULT_SERVICE_NAME,
    DEFAULT_SERVICE_NAMESPACE,
    PROMETHEUS_MAX_AGE_SECONDS,
    SOURCES,
    ClusterConfig,
    ConnectionConfig,
    PrometheusConfig,
    PushConfig,
    ServerConfig,
    StoreConfig,
    TlsConfig,
)
from adapter.logs import configure_logging
from adapter.prometheus import (
    PrometheusClient,
    PrometheusProvider,
    Queries,
    SeriesLabels,
    preset_flags,
)
from adapter.provider import MetricsProvider
from adapter.serving import run_server
from adapter.store import Store
from adapter.store_provider import StoreProvider
from adapter.transport import PushToken, ServingTls, ensure_token_file

logger = logging.getLogger("adapter")

PUSH_TOKEN_FILE = "push-token"  # noqa: S105 - a file name, not a secret


def _path(text: str) -> Path:
    return Path(text)


def _list(text: str) -> tuple[str, ...]:
    """A comma-separated flag value, as Go's ``StringSlice`` reads it (empty parts dropped)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _add_cluster(serve: argparse.ArgumentParser) -> None:
    """The flags of cluster mode, named as ``k8s.io/apiserver``'s delegating options."""
    group = serve.add_argument_group(
        "cluster mode",
        "delegated authentication (front proxy, x509, TokenReview) and authorization"
        " (SubjectAccessReview) through kube-apiserver, and informers for the cluster view",
    )
    group.add_argument(
        "--mode",
        choices=("auto", "standalone", "in-cluster"),
        default="auto",
        help="auto (default): in-cluster when running in a pod or given --kubeconfig",
    )
    group.add_argument(
        "--kubeconfig",
        type=_path,
        help="kubeconfig for kube-apiserver (default in a pod: its service account)",
    )
    group.add_argument(
        "--authorization-always-allow-paths",
        type=_list,
        default=DEFAULT_ALWAYS_ALLOW_PATHS,
        help="paths served without authentication or authorization; /x/* is a prefix"
        f" (default {','.join(DEFAULT_ALWAYS_ALLOW_PATHS)})",
    )
    defaults = ClusterConfig()
    group.add_argument(
        "--authentication-token-webhook-cache-ttl",
        type=durations.duration_arg,
        default=defaults.token_cache_ttl_seconds,
        help="how long TokenReview answers are cached (default 10s)",
    )
    group.add_argument(
        "--authorization-webhook-cache-authorized-ttl",
        type=durations.duration_arg,
        default=defaults.authorized_ttl_seconds,
        help="how long allowing SubjectAccessReviews are cached (default 10s)",
    )
    group.add_argument(
        "--authorization-webhook-cache-unauthorized-ttl",
        type=durations.duration_arg,
        default=defaults.unauthorized_ttl_seconds,
        help="how long denying SubjectAccessReviews are cached (default 10s)",
    )
    group.add_argument(
        "--requestheader-client-ca-file",
        type=_path,
        help="front-proxy CA (default: the ConfigMap's requestheader-client-ca-file)",
    )
    for flag, what in (
        ("--requestheader-allowed-names", "CNs allowed for the front-proxy certificate"),
        ("--requestheader-username-headers", "headers holding the user name"),
        ("--requestheader-group-headers", "headers holding the groups"),
        ("--requestheader-extra-headers-prefix", "prefixes of the extra-attribute headers"),
    ):
        group.add_argument(flag, type=_list, help=f"{what}, comma-separated (default: ConfigMap)")
    group.add_argument(
        "--push-token-audience",
        default=defaults.push_token_audience,
        help="audience of the projected service-account tokens pods push with"
        " (default %(default)s)",
    )
    group.add_argument(
        "--allow-shared-push-token",
        action="store_true",
        help="in-cluster, also accept the shared push token (off: pods push with their own"
        " service-account token only)",
    )
    group.add_argument(
        "--skip-preflight",
        action="store_true",
        help="do not check the adapter's own RBAC permissions at start-up",
    )


def _add_connections(serve: argparse.ArgumentParser) -> None:
    """The bounds on slow or stalled clients (``adapter.serving``)."""
    group = serve.add_argument_group(
        "connections", "how long a client may stall before its connection or request is ended"
    )
    defaults = ConnectionConfig()
    for flag, default, what in (
        (
            "--tls-handshake-timeout",
            defaults.tls_handshake_timeout_seconds,
            "a TLS handshake must finish within this (default 10s)",
        ),
        (
            "--idle-timeout",
            defaults.idle_timeout_seconds,
            "a complete request head must arrive within this of the handshake or of the"
            " previous response; idle and stalled connections are closed (default 1m30s)",
        ),
        (
            "--request-timeout",
            defaults.request_timeout_seconds,
            "a request not answered within this, body read included, gets a 504 (default 1m)",
        ),
        (
            "--write-timeout",
            defaults.write_timeout_seconds,
            "a connection whose answer is not written out within this (the client stopped"
            " reading) is dropped (default 30s)",
        ),
    ):
        group.add_argument(flag, type=durations.duration_arg, default=default, help=what)
    group.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="open connections at most; one more is closed at once, before its TLS handshake"
        " (default %(default)s)",
    )


def _add_pushes(serve: argparse.ArgumentParser) -> None:
    """Load shedding and logging of pushes (``adapter.admission``, ``adapter.rejections``)."""
    group = serve.add_argument_group(
        "pushes", "when pushes are shed with 429 and Retry-After, and how they are logged"
    )
    defaults = PushConfig()
    group.add_argument(
        "--max-inflight-pushes",
        type=int,
        default=defaults.max_inflight_pushes,
        help="pushes admitted and not yet answered at most; beyond, a push gets 429 so that"
        " queries are not kept waiting (default %(default)s)",
    )
    group.add_argument(
        "--max-pod-push-rate",
        type=float,
        default=defaults.max_pod_push_rate,
        help="pushes a second from one pod at most, in bursts of as many; beyond, 429"
        " (default %(default)g)",
    )
    group.add_argument(
        "--log-pushes",
        action="store_true",
        help="write an access line for every push (default: pushes are counted in /metrics"
        " and only refused ones are logged, at most once a minute per reason and pod)",
    )


def _add_prometheus(serve: argparse.ArgumentParser) -> None:
    """The flags of ``--source prometheus`` (``adapter.prometheus``)."""
    group = serve.add_argument_group(
        "prometheus source",
        "read the metrics from a Prometheus-compatible query API (Prometheus, Thanos, Mimir,"
        " VictoriaMetrics) instead of pushes; only GET /api/v1/query is used",
    )
    group.add_argument(
        "--source",
        choices=SOURCES,
        default="push",
        help="push (default): pods push to the adapter; prometheus: PromQL over their /metrics",
    )
    group.add_argument("--prometheus-url", help="base URL of the query API")
    group.add_argument(
        "--prometheus-bearer-token-file",
        type=_path,
        help="bearer token for the query API, read again when the file changes",
    )
    group.add_argument(
        "--prometheus-ca-file", type=_path, help="CA bundle for an https URL (default: system)"
    )
    defaults = PrometheusConfig()
    group.add_argument(
        "--prometheus-timeout",
        type=durations.duration_arg,
        default=defaults.timeout_seconds,
        help="a query not answered within this is a 503 (default 5s)",
    )
    group.add_argument(
        "--prometheus-pod-label",
        default=defaults.pod_label,
        help="the series label naming the pod (default %(default)s)",
    )
    group.add_argument(
        "--prometheus-namespace-label",
        default=defaults.namespace_label,
        help="the series label naming the namespace (default %(default)s)",
    )
    group.add_argument(
        "--prometheus-gauge-window",
        type=durations.duration_arg,
        default=defaults.gauge_window_seconds,
        help="gauges are averaged over this (default 15s)",
    )
    preset_flags.add_flags(group.add_argument, "prometheus-", defaults.preset)


STORE_BUDGET_SHARE = 0.5
"""The share of the memory limit (the machine's memory without one) that pods' data may take by
default; the rest is the process itself, its connections and the query caches."""


def _bytes(text: str) -> int:
    """A Kubernetes quantity of bytes (``512Mi``, ``1G``, ``1048576``) as a flag value."""
    try:
        value = quantity.parse_quantity(text)
    except quantity.InvalidQuantity as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if value <= 0 or value != value.to_integral_value():
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of bytes")
    return int(value)


def _bytes_or_auto(text: str) -> int | None:
    return None if text == "auto" else _bytes(text)


def _add_memory(serve: argparse.ArgumentParser) -> None:
    """The memory budgets of pushed data (``adapter.store``)."""
    group = serve.add_argument_group(
        "memory", "how much memory pushed data may take; a push past a budget gets 429"
    )
    group.add_argument(
        "--pod-memory-budget",
        type=_bytes,
        help="the most one pod's labels and latency window may hold (default: 32Ki for each"
        " second of --window, plus 64Ki: 1Mi for 30s)",
    )
    group.add_argument(
        "--store-memory-budget",
        type=_bytes_or_auto,
        default=None,
        help="the most all pods' data may hold together (default auto: half the container's"
        " memory limit, or of the machine's memory without one)",
    )


def store_memory_budget(args: argparse.Namespace, memory_bytes: int | None) -> int:
    """``--store-memory-budget``, or ``STORE_BUDGET_SHARE`` of the memory the process may use
    (``memory_bytes``; None: read the cgroup limit, else the machine's memory)."""
    if args.store_memory_budget is not None:
        return int(args.store_memory_budget)
    if memory_bytes is None:
        memory_bytes = memorylimit.memory_limit_bytes() or memorylimit.machine_memory_bytes()
    return int(memory_bytes * STORE_BUDGET_SHARE)


def cluster_mode_wanted(args: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    """In-cluster when asked, given --kubeconfig, or running in a pod (``--mode auto``)."""
    from adapter.incluster import running_in_pod

    if args.mode != "auto":
        return bool(args.mode == "in-cluster")
    return args.kubeconfig is not None or running_in_pod(environ)


def _add_serve(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the adapter over TLS")
    serve.add_argument("--secure-port", type=int, default=6443, help="HTTPS port (default 6443)")
    serve.add_argument(
        "--bind-address",
        default=ServerConfig.bind_address,
        help="address to listen on (default 0.0.0.0)",
    )
    serve.add_argument(
        "--cert-dir",
        type=_path,
        default=TlsConfig.cert_dir,
        help="where generated certificates and the push token live (default %(default)s)",
    )
    serve.add_argument("--tls-cert-file", type=_path, help="PEM serving certificate (chain)")
    serve.add_argument("--tls-private-key-file", type=_path, help="PEM key of --tls-cert-file")
    serve.add_argument(
        "--client-ca-file",
        type=_path,
        help="CA for x509 client certificates (default: the CA generated in --cert-dir)",
    )
    serve.add_argument(
        "--service-name",
        default=DEFAULT_SERVICE_NAME,
        help="Service name in the generated certificate's <service>.<namespace>.svc SAN",
    )
    serve.add_argument(
        "--service-namespace",
        default=DEFAULT_SERVICE_NAMESPACE,
        help="namespace in that SAN (default %(default)s)",
    )
    serve.add_argument(
        "--push-token-file",
        type=_path,
        help=f"shared bearer token for pushes (default: generated as <cert-dir>/{PUSH_TOKEN_FILE})",
    )
    serve.add_argument(
        "--window",
        type=durations.duration_arg,
        default=StoreConfig.window_seconds,
        help="latency quantiles and rates cover this window (default 30s)",
    )
    serve.add_argument(
        "--rate-window",
        type=durations.duration_arg,
        default=StoreConfig.rate_window_seconds,
        help="inference_required_replicas reads the arrival rate over this span (default 10s)",
    )
    serve.add_argument(
        "--max-age",
        type=durations.duration_arg,
        help="pods silent for longer are not served (default 10s; with --source prometheus"
        " 1m: a pod's newest sample may be a scrape interval old)",
    )
    serve.add_argument(
        "--warm-up",
        type=durations.duration_arg,
        help="/readyz is 503 for this long after start-up, until every live pod has pushed to"
        " this replica (default 2s: two push intervals; 0s with --source prometheus)",
    )
    serve.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="log line format"
    )
    serve.add_argument(
        "--event-loop",
        choices=eventloop.CHOICES,
        default=eventloop.default(),
        help="the asyncio event loop to run on (default: uvloop where it is installed, else"
        " asyncio)",
    )
    _add_connections(serve)
    _add_pushes(serve)
    _add_memory(serve)
    _add_cluster(serve)
    _add_prometheus(serve)


def _add_certs(subparsers: argparse._SubParsersAction) -> None:
    certs_parser = subparsers.add_parser(
        "certs", help="certificates: a client certificate, or the serving material for a cluster"
    )
    certs_commands = certs_parser.add_subparsers(dest="certs_command", required=True)
    serving = certs_commands.add_parser(
        "serving",
        help="the CA and serving certificate for <service>.<namespace>.svc, written into a"
        " kustomize overlay with the APIService caBundle patch",
    )
    serving.add_argument(
        "--overlay-dir",
        type=_path,
        required=True,
        help="the overlay to write tls/ and cabundle-patch.yaml into",
    )
    serving.add_argument(
        "--cert-dir",
        type=_path,
        default=TlsConfig.cert_dir,
        help="where the CA and its key live, made on first use (default %(default)s)",
    )
    serving.add_argument("--service-name", default=DEFAULT_SERVICE_NAME)
    serving.add_argument("--service-namespace", default=DEFAULT_SERVICE_NAMESPACE)
    client = certs_commands.add_parser(
        "client", help="issue a client certificate signed by the CA in --cert-dir"
    )
    client.add_argument("name", help="the user name (certificate CN)")
    client.add_argument(
        "--group", action="append", default=[], help="a group (certificate O); repeatable"
    )
    client.add_argument("--cert-dir", type=_path, default=TlsConfig.cert_dir)
    client.add_argument(
        "--out-dir", type=_path, default=Path("."), help="where NAME.crt and NAME.key go"
    )
    client.add_argument(
        "--kubeconfig",
        type=_path,
        help="also write a kubeconfig for kubectl with this certificate",
    )
    client.add_argument(
        "--server",
        default="https://127.0.0.1:6443",
        help="adapter URL written into --kubeconfig (default %(default)s)",
    )


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="the closed loop on this machine: adapter, model pods, HPA emulation, load",
    )
    demo.add_argument(
        "--out", type=_path, default=Path("demo-out"), help="where the timeline and plot go"
    )
    demo.add_argument(
        "--compare",
        action="store_true",
        help="run the same load under CPU, queue-depth and p99 HPAs and compare them",
    )


def _add_simulate(subparsers: argparse._SubParsersAction) -> None:
    """Listed here; ``main`` hands its arguments to ``simulator.cli`` (its own parser)."""
    subparsers.add_parser(
        "simulate",
        help="replay a load against HPA manifests in virtual time (seconds for an hour);"
        " inference-adapter simulate --help",
        add_help=False,
    )


def _add_relay(subparsers: argparse._SubParsersAction) -> None:
    relay_parser = subparsers.add_parser(
        "relay",
        help="a sidecar that scrapes a real server's /metrics through a preset and pushes"
        " its reports (docs/real-servers.md)",
    )
    relay.add_arguments(relay_parser, os.environ)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inference-adapter",
        description="Custom and external metrics API adapter for inference pods.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_serve(subparsers)
    _add_certs(subparsers)
    _add_demo(subparsers)
    _add_simulate(subparsers)
    _add_relay(subparsers)
    return parser


def server_config(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    memory_bytes: int | None = None,
) -> ServerConfig:
    """The serve flags as configuration (``environ`` only tells whether this is a pod,
    ``memory_bytes`` how much memory the process may use: see ``store_memory_budget``)."""
    cluster = ClusterConfig(
        enabled=cluster_mode_wanted(args, os.environ if environ is None else environ),
        kubeconfig=args.kubeconfig,
        always_allow_paths=tuple(args.authorization_always_allow_paths),
        token_cache_ttl_seconds=args.authentication_token_webhook_cache_ttl,
        authorized_ttl_seconds=args.authorization_webhook_cache_authorized_ttl,
        unauthorized_ttl_seconds=args.authorization_webhook_cache_unauthorized_ttl,
        requestheader_client_ca_file=args.requestheader_client_ca_file,
        requestheader_allowed_names=args.requestheader_allowed_names,
        requestheader_username_headers=args.requestheader_username_headers,
        requestheader_group_headers=args.requestheader_group_headers,
        requestheader_extra_headers_prefix=args.requestheader_extra_headers_prefix,
        push_token_audience=args.push_token_audience,
        allow_shared_push_token=args.allow_shared_push_token,
        preflight=not args.skip_preflight,
    )
    prometheus = args.source == "prometheus"
    max_age = args.max_age
    if max_age is None:
        max_age = PROMETHEUS_MAX_AGE_SECONDS if prometheus else StoreConfig.max_age_seconds
    preset, generic_series = preset_flags.chosen(args, "prometheus-")
    warm_up = args.warm_up
    if warm_up is None:  # nothing pushes to a replica that reads Prometheus
        warm_up = 0.0 if prometheus else ServerConfig.warm_up_seconds
    return ServerConfig(
        bind_address=args.bind_address,
        secure_port=args.secure_port,
        log_format=args.log_format,
        event_loop=args.event_loop,
        warm_up_seconds=warm_up,
        tls=TlsConfig(
            cert_dir=args.cert_dir,
            cert_file=args.tls_cert_file,
            key_file=args.tls_private_key_file,
            client_ca_file=args.client_ca_file,
            service_name=args.service_name,
            service_namespace=args.service_namespace,
        ),
        store=StoreConfig(
            window_seconds=args.window,
            max_age_seconds=max_age,
            rate_window_seconds=args.rate_window,
            pod_memory_budget_bytes=args.pod_memory_budget,
            store_memory_budget_bytes=store_memory_budget(args, memory_bytes),
        ),
        push=PushConfig(
            token_file=args.push_token_file,
            max_inflight_pushes=args.max_inflight_pushes,
            max_pod_push_rate=args.max_pod_push_rate,
            log_pushes=args.log_pushes,
        ),
        connections=ConnectionConfig(
            tls_handshake_timeout_seconds=args.tls_handshake_timeout,
            idle_timeout_seconds=args.idle_timeout,
            request_timeout_seconds=args.request_timeout,
            write_timeout_seconds=args.write_timeout,
            max_connections=args.max_connections,
        ),
        cluster=cluster,
        source=args.source,
        prometheus=PrometheusConfig(
            url=args.prometheus_url,
            bearer_token_file=args.prometheus_bearer_token_file,
            ca_file=args.prometheus_ca_file,
            timeout_seconds=args.prometheus_timeout,
            pod_label=args.prometheus_pod_label,
            namespace_label=args.prometheus_namespace_label,
            gauge_window_seconds=args.prometheus_gauge_window,
            preset=preset,
            generic_series=generic_series,
        ),
    )


def provider_for(
    config: ServerConfig, store: Store, view: PodView | None = None
) -> tuple[MetricsProvider, PrometheusClient | None]:
    """The provider ``--source`` asks for, and the Prometheus client it needs (if any)."""
    if config.source != "prometheus":
        return StoreProvider(store, view=view), None
    settings = config.prometheus
    assert settings.url is not None  # validate() saw to it
    client = PrometheusClient(
        settings.url, settings.timeout_seconds, settings.bearer_token_file, settings.ca_file
    )
    queries = Queries(
        SeriesLabels(pod=settings.pod_label, namespace=settings.namespace_label),
        window_seconds=config.store.window_seconds,
        gauge_window_seconds=settings.gauge_window_seconds,
        max_age_seconds=config.store.max_age_seconds,
    )
    preset = preset_flags.build(settings.preset, settings.generic_series, "prometheus-")
    logger.info(
        "reading metrics from Prometheus at %s (preset %s); pushes are off",
        settings.url,
        preset.name,
    )
    return PrometheusProvider(client, queries, preset, view=view), client


def application(state: AdapterState, client: PrometheusClient | None) -> web.Application:
    """``make_app`` plus, in Prometheus mode, the client's session and its query metrics."""
    app = make_app(state)
    if client is not None:
        backend = client
        state.telemetry.registry.register(backend.telemetry)

        async def backend_session(app: web.Application) -> AsyncIterator[None]:
            async with backend:
                yield

        app.cleanup_ctx.append(backend_session)
    return app


def _push_token(path: Path) -> PushToken:
    """The shared push token in ``path``; exits with one line when it cannot be one."""
    try:
        return PushToken.from_file(path)
    except ValueError as error:
        raise SystemExit(f"inference-adapter: --push-token-file {path}: {error}") from None


def serve(config: ServerConfig) -> None:
    """Prepare certificates and token, then run until SIGINT or SIGTERM."""
    logger.info(
        "pods' data may hold %d MiB together, %d KiB a pod (--store-memory-budget,"
        " --pod-memory-budget)",
        (config.store.total_budget_bytes or 0) >> 20,
        config.store.pod_budget_bytes >> 10,
    )
    tls = config.tls
    now = datetime.datetime.now(datetime.UTC)
    if tls.cert_file is None or tls.key_file is None:
        hostnames = certs.serving_hostnames(tls.service_name, tls.service_namespace)
        files = certs.ensure_serving_files(tls.cert_dir, hostnames, now)
        cert_file, key_file = files.cert, files.key
        logger.info("clients trust the serving certificate through the CA %s", files.ca_cert)
    else:
        cert_file, key_file = tls.cert_file, tls.key_file
    if config.cluster.enabled:
        serve_cluster(config, cert_file, key_file)
        return
    if tls.client_ca_file is not None:
        client_ca = tls.client_ca_file
    else:
        certs.load_or_make_ca(tls.cert_dir, now)
        client_ca = tls.cert_dir / certs.CA_CERT_FILE
    token_file = config.push.token_file or ensure_token_file(tls.cert_dir / PUSH_TOKEN_FILE)
    logger.info("client certificates are verified against %s", client_ca)
    logger.info("pushes authenticate with the bearer token in %s", token_file)
    serving = ServingTls(cert_file, key_file, client_ca)
    store = Store(config.store)
    provider, client = provider_for(config, store)
    state = AdapterState(
        config=config,
        store=store,
        provider=provider,
        push_token=_push_token(token_file),
        tls=serving,
        client_certificates=clientcerts.ClientCertificates(client_ca, serving),
    )
    run_server(
        application(state, client),
        config,
        serving.context,
        lambda: logger.info(
            "serving on https://%s:%d (event loop %s)",
            config.bind_address,
            config.secure_port,
            config.event_loop,
        ),
    )


def serve_cluster(config: ServerConfig, cert_file: Path, key_file: Path) -> None:
    """Cluster mode: preflight, the authentication ConfigMap, informers, then serve."""
    from adapter import incluster, kube

    serving = ServingTls(cert_file, key_file, None)
    push_token = None
    if config.cluster.allow_shared_push_token:
        token_file = config.push.token_file or ensure_token_file(
            config.tls.cert_dir / PUSH_TOKEN_FILE
        )
        push_token = _push_token(token_file)
        logger.info("pushes may also use the shared bearer token in %s", token_file)
    client = kube.KubeClient.from_kubeconfig(config.cluster.kubeconfig)
    store = Store(config.store)

    async def build() -> web.Application:
        mode = await incluster.prepare(config, client, store, serving)
        provider, backend = provider_for(config, store, mode.view)
        state = AdapterState(
            config=config,
            store=store,
            provider=provider,
            push_token=push_token,
            tls=serving,
            cluster=mode,
        )
        return application(state, backend)

    try:
        run_server(
            build(),
            config,
            serving.context,
            lambda: logger.info(
                "serving on https://%s:%d (cluster mode, event loop %s)",
                config.bind_address,
                config.secure_port,
                config.event_loop,
            ),
        )
    except incluster.StartupError as error:
        print(f"inference-adapter: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        client.close()


def _kubeconfig(server: str, ca_file: Path, cert_file: Path, key_file: Path, user: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "inference-adapter",
                "cluster": {"server": server, "certificate-authority": str(ca_file.resolve())},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(cert_file.resolve()),
                    "client-key": str(key_file.resolve()),
                },
            }
        ],
        "contexts": [
            {"name": "inference-adapter", "context": {"cluster": "inference-adapter", "user": user}}
        ],
        "current-context": "inference-adapter",
    }


def issue_serving(args: argparse.Namespace) -> None:
    """``certs serving``: the serving material and caBundle patch for a kustomize overlay."""
    if not args.overlay_dir.is_dir():
        raise SystemExit(f"inference-adapter: --overlay-dir {args.overlay_dir}: no such directory")
    now = datetime.datetime.now(datetime.UTC)
    hostnames = certs.serving_hostnames(args.service_name, args.service_namespace)
    files = certs.ensure_serving_files(args.cert_dir, hostnames, now)
    for written in certs.write_overlay_files(files, args.overlay_dir):
        print(f"wrote {written}")


def issue_client(args: argparse.Namespace) -> None:
    """``certs client``: write NAME.crt / NAME.key (and a kubeconfig when asked)."""
    if "/" in args.name or not args.name.strip():
        raise SystemExit(f"inference-adapter: invalid user name {args.name!r}")
    now = datetime.datetime.now(datetime.UTC)
    cert_file, key_file = certs.write_client_files(
        args.cert_dir, args.out_dir, args.name, args.group, now
    )
    print(f"wrote {cert_file} and {key_file}")
    if args.kubeconfig is not None:
        config = _kubeconfig(
            args.server, args.cert_dir / certs.CA_CERT_FILE, cert_file, key_file, args.name
        )
        args.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")
        print(f"wrote {args.kubeconfig}")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        from simulator import cli

        raise SystemExit(cli.main(argv[1:]))
    args = build_parser().parse_args(argv)
    if args.command == "certs":
        configure_logging("text")
        if args.certs_command == "serving":
            issue_serving(args)
        else:
            issue_client(args)
        return
    if args.command == "demo":
        from localcluster import demo

        configure_logging("text")
        raise SystemExit(demo.main(args.out, args.compare))
    if args.command == "relay":
        try:
            relay_config = relay.config_from_args(args)
        except (ValueError, OSError) as error:
            raise SystemExit(f"inference-adapter relay: {error}") from None
        configure_logging("text")
        eventloop.run(relay.run(relay_config), eventloop.default())
        return
    config = server_config(args)
    problems = config.validate()
    if problems:
        for problem in problems:
            print(f"inference-adapter: {problem}", file=sys.stderr)
        raise SystemExit(2)
    configure_logging(config.log_format)
    heap.keep_freed_memory()
    serve(config)


if __name__ == "__main__":
    main()
