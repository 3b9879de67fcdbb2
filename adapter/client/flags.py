"""The identity and push flags that ``model-server`` and ``inference-adapter relay`` share.

Both push for one pod: who it is (flags, or the Kubernetes downward API: ``POD_NAME``,
``POD_NAMESPACE``, ``POD_UID``, a labels file) and where and how to push. ``add_push_flags``
declares them through the command's own ``add`` (which may read defaults from the
environment), ``push_settings`` checks them and builds the settings.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapter import durations, resolver
from adapter.client import identity
from adapter.client.pusher import (
    DEFAULT_MAX_BACKLOG_AGE_SECONDS,
    LatencyRecorder,
    PodIdentity,
    PushClient,
    Token,
    TokenFile,
    parse_adapter_url,
)
from adapter.resolver import StaticResolver

AddFlag = Callable[..., None]
"""``add(flag, **argparse keywords)``: the command's way of declaring a flag."""


def add_push_flags(add: AddFlag, environ: Mapping[str, str]) -> None:
    """Declare the push and identity flags (defaults of the identity from ``environ``)."""
    add("--adapter-url", action="append", default=[], help="adapter base URL (repeatable)")
    add(
        "--resolve",
        action="append",
        default=[],
        help="HOST:ADDR[,ADDR...]: the adapter replicas HOST stands for, instead of DNS (as curl's"
        " --resolve; repeatable)",
    )
    add("--adapter-ca-file", type=Path, help="CA that signed the adapter's serving certificate")
    add("--push-token-file", type=Path, help="bearer token for pushes")
    add("--push-interval", type=durations.duration_arg, default="1s", help="push interval")
    add(
        "--push-backlog-max-age",
        type=durations.duration_arg,
        default=f"{DEFAULT_MAX_BACKLOG_AGE_SECONDS:g}s",
        help="data a replica has not acknowledged for this long is dropped, not sent in one"
        " burst later: the adapter's --max-age",
    )
    add("--pod-name", default=environ.get("POD_NAME"), help="pod name [or env POD_NAME]")
    add(
        "--namespace",
        default=environ.get("POD_NAMESPACE", "default"),
        help="pod namespace [or env POD_NAMESPACE]",
    )
    add("--pod-uid", default=environ.get("POD_UID", ""), help="pod uid [or env POD_UID]")
    add("--labels", default="", help="pod labels, app=model,tier=gpu")
    add("--labels-file", type=Path, help='downward-API labels file (key="value" lines)')
    add("--deployment", default=None, help="the owning Deployment")


@dataclass(frozen=True)
class PushSettings:
    """Who the pod is and where its reports go."""

    identity: PodIdentity
    adapter_urls: tuple[str, ...] = ()
    """Each URL's host name stands for every address it resolves to: a replica each."""
    adapter_addresses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Fixed addresses for adapter host names (``--resolve``), instead of DNS."""
    adapter_ca_file: Path | None = None
    push_token: Token = ""
    """The bearer token, or a ``TokenFile`` read again when it changes (projected tokens rotate)."""
    push_interval_seconds: float = 1.0
    push_backlog_max_age_seconds: float = DEFAULT_MAX_BACKLOG_AGE_SECONDS
    """Undelivered data older than this is dropped (the adapter's ``--max-age``)."""

    def client(
        self,
        recorder: LatencyRecorder | None = None,
        gauges: Callable[[], Mapping[str, float]] | None = None,
        service_times: LatencyRecorder | None = None,
    ) -> PushClient:
        """The push client these settings describe (a relay gives no recorders or gauges: it
        hands ``PushClient.run`` its own reading)."""
        addresses = self.adapter_addresses
        return PushClient(
            list(self.adapter_urls),
            self.identity,
            self.push_token,
            recorder,
            gauges,
            ca_file=self.adapter_ca_file,
            interval_seconds=self.push_interval_seconds,
            max_backlog_age_seconds=self.push_backlog_max_age_seconds,
            resolver=StaticResolver(addresses) if addresses else None,
            service_times=service_times,
        )


def push_settings(args: argparse.Namespace) -> PushSettings:
    """The flags of ``add_push_flags``, checked; ValueError (or OSError reading a file) with a
    one-line message."""
    labels = identity.parse_labels(args.labels)
    if args.labels_file is not None:
        labels |= identity.parse_labels_file(args.labels_file.read_text())
    pod_name = args.pod_name or socket.gethostname()
    identity.check_pod(args.namespace, pod_name)
    if args.adapter_url and args.push_token_file is None:
        raise ValueError("--adapter-url needs --push-token-file")
    for url in args.adapter_url:
        parse_adapter_url(url)
    if args.push_backlog_max_age <= 0:
        raise ValueError("--push-backlog-max-age must be positive")
    token: Token = ""
    if args.push_token_file is not None:
        token = TokenFile(args.push_token_file)
        if not token():
            raise ValueError(f"--push-token-file {args.push_token_file} is empty")
    return PushSettings(
        identity=PodIdentity(args.namespace, pod_name, args.pod_uid, labels, args.deployment),
        adapter_urls=tuple(args.adapter_url),
        adapter_addresses=resolver.parse_resolve(args.resolve),
        adapter_ca_file=args.adapter_ca_file,
        push_token=token,
        push_interval_seconds=args.push_interval,
        push_backlog_max_age_seconds=args.push_backlog_max_age,
    )
