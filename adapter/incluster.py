"""Cluster mode assembled: preflight, the authentication ConfigMap, reviews, the cluster view.

``prepare`` runs once before serving: it checks the adapter's RBAC (``adapter.preflight``), reads
``kube-system/extension-apiserver-authentication``, makes the serving context trust its CAs, and
returns the ``ClusterMode`` the application runs with. That mode's ``lifetime`` (an aiohttp
``cleanup_ctx`` runs it) keeps informers on the ConfigMap — a changed CA or header list applies to
the next request and the next handshake, no restart — and on pods, replica sets, deployments and
services, and holds start-up until they have all listed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from adapter import kube, kubeauth, preflight
from adapter.app import ClusterMode
from adapter.config import ServerConfig
from adapter.store import Store
from adapter.transport import ServingTls

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
CONFIGMAP = kube.Kind(
    "configmaps",
    f"/api/v1/namespaces/{kubeauth.CONFIGMAP_NAMESPACE}/configmaps",
    f"metadata.name={kubeauth.CONFIGMAP_NAME}",
)


class StartupError(Exception):
    """Cluster mode cannot start; the message tells the operator what to fix."""


def running_in_pod(
    environ: Mapping[str, str], service_account_dir: Path = SERVICE_ACCOUNT_DIR
) -> bool:
    """Whether this process runs in a Kubernetes pod with a service-account token."""
    return (
        bool(environ.get("KUBERNETES_SERVICE_HOST")) and (service_account_dir / "token").is_file()
    )


def overrides(config: ServerConfig) -> kubeauth.RequestHeaderOverrides:
    """The flags that replace ConfigMap keys (files read here, once)."""
    cluster = config.cluster

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path is not None else None

    return kubeauth.RequestHeaderOverrides(
        ca_pem=read(cluster.requestheader_client_ca_file),
        allowed_names=cluster.requestheader_allowed_names,
        username_headers=cluster.requestheader_username_headers,
        group_headers=cluster.requestheader_group_headers,
        extra_headers_prefixes=cluster.requestheader_extra_headers_prefix,
        client_ca_pem=read(config.tls.client_ca_file),
    )


class ConfigMapWatch:
    """Applies each new version of the authentication ConfigMap (an informer's ``Deliver``)."""

    def __init__(
        self,
        authenticator: kubeauth.Authenticator,
        tls: ServingTls | None,
        header_overrides: kubeauth.RequestHeaderOverrides,
    ) -> None:
        self.authenticator = authenticator
        self.tls = tls
        self.header_overrides = header_overrides
        self.applied = 0
        """Changes applied since start (for tests and logs)."""

    def __call__(self, event_type: str, payload: Any) -> None:
        if event_type == kube.SYNC:
            if not payload:
                logger.warning("the ConfigMap %s is gone; keeping the last one", CONFIGMAP.path)
                return
            payload = payload[0]
        if event_type == "DELETED":
            logger.warning("the ConfigMap %s was deleted; keeping the last one", CONFIGMAP.path)
            return
        data = {str(k): str(v) for k, v in (payload.get("data") or {}).items()}
        try:
            source = kubeauth.parse_authentication_configmap(data, self.header_overrides)
        except ValueError as error:
            logger.error("ignoring an unusable %s: %s", kubeauth.CONFIGMAP_NAME, error)
            return
        if source == self.authenticator.source:
            return
        if self.tls is not None:
            self.tls.trust_client_cas(source.ca_bundles())
        self.authenticator.update(source)
        self.applied += 1
        logger.info("applied a new %s (CAs and request headers)", kubeauth.CONFIGMAP_NAME)


async def prepare(
    config: ServerConfig,
    client: kube.KubeClient,
    store: Store,
    tls: ServingTls | None,
    clock: Callable[[], float] | None = None,
) -> ClusterMode:
    """Everything cluster mode needs before serving; raises ``StartupError`` with the fix.

    ``clock`` (monotonic seconds) times the review caches; tests pass a fake one.
    """
    settings = config.cluster
    header_overrides = overrides(config)
    if settings.preflight:
        fallback = (
            f"{kubeauth.SERVICE_ACCOUNT_PREFIX}{config.tls.service_namespace}"
            f":{config.tls.service_name}"
        )
        try:
            subject, missing = await preflight.check(client, fallback)
        except kubeauth.ReviewUnavailable as error:
            raise StartupError(f"preflight: cannot ask the Kubernetes API: {error}") from error
        if missing:
            raise StartupError(preflight.report(missing, subject))
    try:
        data = await client.read_configmap(kubeauth.CONFIGMAP_NAMESPACE, kubeauth.CONFIGMAP_NAME)
    except kube.KubeError as error:
        raise StartupError(
            f"Unable to get configmap/{kubeauth.CONFIGMAP_NAME} in"
            f" {kubeauth.CONFIGMAP_NAMESPACE}: {error}. Usually fixed by 'kubectl create"
            f" rolebinding -n kube-system ROLEBINDING_NAME"
            f" --role=extension-apiserver-authentication-reader"
            f" --serviceaccount=YOUR_NS:YOUR_SA'"
        ) from error
    try:
        source = kubeauth.parse_authentication_configmap(data, header_overrides)
    except ValueError as error:
        raise StartupError(f"{kubeauth.CONFIGMAP_NAME}: {error}") from error
    if tls is not None:
        tls.trust_client_cas(source.ca_bundles())
    extra = {"clock": clock} if clock is not None else {}
    authenticator = kubeauth.Authenticator(
        source, client, settings.token_cache_ttl_seconds, **extra
    )
    authorizer = kubeauth.Authorizer(
        client,
        settings.authorized_ttl_seconds,
        settings.unauthorized_ttl_seconds,
        settings.always_allow_paths,
        **extra,
    )
    view = kube.ClusterView(on_pod_gone=store.forget)
    watch = ConfigMapWatch(authenticator, tls, header_overrides)
    logger.info(
        "cluster mode: front proxy %s, x509 users %s, TokenReview, SubjectAccessReview",
        "trusted" if source.request_header else "not configured",
        "accepted" if source.client_ca_pem else "not configured",
    )

    @contextlib.asynccontextmanager
    async def lifetime() -> AsyncIterator[None]:
        subscriptions = [(kind, view.deliver(kind)) for kind in kube.VIEW_KINDS]
        subscriptions.append((CONFIGMAP, watch))
        async with kube.informing(client, subscriptions, settings.resync_seconds):
            try:
                await asyncio.wait_for(view.ready.wait(), settings.sync_timeout_seconds)
            except TimeoutError as error:
                missing = {k.name for k in kube.VIEW_KINDS} - view.synced
                raise StartupError(
                    f"the cluster view did not list {', '.join(sorted(missing))} within"
                    f" {settings.sync_timeout_seconds:g}s"
                ) from error
            logger.info("cluster view synced")
            yield

    return ClusterMode(
        authenticator=authenticator,
        authorizer=authorizer,
        view=view,
        push_audience=settings.push_token_audience,
        allow_shared_push_token=settings.allow_shared_push_token,
        lifetime=lifetime,
    )
