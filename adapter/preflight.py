"""Start-up check of the adapter's own permissions in cluster mode.

Before serving, the adapter asks kube-apiserver (``SelfSubjectAccessReview``, which every
authenticated identity may create) whether it may do each thing it needs:

- get ConfigMap ``kube-system/extension-apiserver-authentication`` (the front-proxy CA and headers),
- create ``tokenreviews`` and ``subjectaccessreviews`` (delegated authentication/authorization),
- list and watch ``pods``, ``services``, ``replicasets.apps``, ``deployments.apps`` (the view).

A missing permission is reported with the exact binding that grants it — the same objects as
``apiservice/base/rbac.yaml`` — as YAML and as a ``kubectl`` command, so the operator can paste
the fix. Without this, the adapter would start and then answer every request with 401/403/503,
which is much harder to trace back to RBAC.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from adapter.kubeauth import CONFIGMAP_NAME, CONFIGMAP_NAMESPACE, SERVICE_ACCOUNT_PREFIX

logger = logging.getLogger(__name__)

APP = "inference-metrics-adapter"


@dataclass(frozen=True)
class Subject:
    """Who the adapter runs as: a service account, or a plain user (kubeconfig)."""

    username: str

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) of a ``system:serviceaccount:<ns>:<name>`` user."""
        if not self.username.startswith(SERVICE_ACCOUNT_PREFIX):
            return None
        namespace, _, name = self.username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        return namespace, name

    def yaml(self) -> str:
        account = self.service_account
        if account is None:
            return (
                "  - apiGroup: rbac.authorization.k8s.io\n"
                f"    kind: User\n    name: {self.username}\n"
            )
        return f"  - kind: ServiceAccount\n    name: {account[1]}\n    namespace: {account[0]}\n"

    def flag(self) -> str:
        account = self.service_account
        if account is None:
            return f"--user={self.username}"
        return f"--serviceaccount={account[0]}:{account[1]}"


@dataclass(frozen=True)
class Permission:
    """One thing the adapter must be allowed to do, and the binding that allows it."""

    verb: str
    group: str
    resource: str
    binding: str
    """``AUTH_READER``, ``AUTH_DELEGATOR`` or ``RESOURCE_READER``."""
    namespace: str = ""
    name: str = ""

    def attributes(self) -> dict[str, str]:
        fields = {
            "verb": self.verb,
            "group": self.group,
            "resource": self.resource,
            "namespace": self.namespace,
            "name": self.name,
        }
        return {k: v for k, v in fields.items() if v or k == "group"}

    def __str__(self) -> str:
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        where = f" {self.namespace}/{self.name}" if self.name else ""
        return f"{self.verb} {resource}{where}"


AUTH_READER = "auth-reader"
AUTH_DELEGATOR = "auth-delegator"
RESOURCE_READER = "resource-reader"

PERMISSIONS = (
    Permission("get", "", "configmaps", AUTH_READER, CONFIGMAP_NAMESPACE, CONFIGMAP_NAME),
    Permission("watch", "", "configmaps", AUTH_READER, CONFIGMAP_NAMESPACE, CONFIGMAP_NAME),
    Permission("create", "authentication.k8s.io", "tokenreviews", AUTH_DELEGATOR),
    Permission("create", "authorization.k8s.io", "subjectaccessreviews", AUTH_DELEGATOR),
    *(
        Permission(verb, group, resource, RESOURCE_READER)
        for group, resource in (
            ("", "pods"),
            ("", "services"),
            ("apps", "replicasets"),
            ("apps", "deployments"),
        )
        for verb in ("list", "watch")
    ),
)


def binding_text(binding: str, subject: Subject) -> str:
    """The RBAC objects (YAML) and the ``kubectl`` command that grant ``binding``."""
    labels = f"  labels:\n    app.kubernetes.io/name: {APP}\n"
    if binding == AUTH_READER:
        return (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n"
            f"  name: {APP}:auth-reader\n  namespace: kube-system\n{labels}"
            "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n"
            "  name: extension-apiserver-authentication-reader\n"
            f"subjects:\n{subject.yaml()}"
            f"\n# or: kubectl create rolebinding {APP}:auth-reader -n kube-system"
            f" --role=extension-apiserver-authentication-reader {subject.flag()}\n"
        )
    if binding == AUTH_DELEGATOR:
        return (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n"
            f"  name: {APP}:system:auth-delegator\n{labels}"
            "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n"
            "  name: system:auth-delegator\n"
            f"subjects:\n{subject.yaml()}"
            f"\n# or: kubectl create clusterrolebinding {APP}:system:auth-delegator"
            f" --clusterrole=system:auth-delegator {subject.flag()}\n"
        )
    return (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
        f"  name: {APP}:resource-reader\n{labels}"
        "rules:\n"
        '  - apiGroups: [""]\n    resources: ["pods", "services"]\n'
        '    verbs: ["get", "list", "watch"]\n'
        '  - apiGroups: ["apps"]\n    resources: ["replicasets", "deployments"]\n'
        '    verbs: ["get", "list", "watch"]\n'
        "---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n"
        f"  name: {APP}:resource-reader\n{labels}"
        "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n"
        f"  name: {APP}:resource-reader\n"
        f"subjects:\n{subject.yaml()}"
        f"\n# or: kubectl create clusterrole {APP}:resource-reader --verb=get,list,watch"
        " --resource=pods,services,replicasets.apps,deployments.apps\n"
        f"#     kubectl create clusterrolebinding {APP}:resource-reader"
        f" --clusterrole={APP}:resource-reader {subject.flag()}\n"
    )


def report(missing: Sequence[Permission], subject: Subject) -> str:
    """What to tell the operator: each missing permission, then each binding that grants them."""
    lines = [
        f"preflight: {subject.username} lacks {len(missing)} permission(s) the adapter needs:",
        *(f"  - {permission}" for permission in missing),
        "Apply the missing RBAC binding(s):",
        "",
    ]
    bindings = list(dict.fromkeys(p.binding for p in missing))
    return "\n".join(lines) + "---\n".join(binding_text(b, subject) for b in bindings)


class SelfReviewer(Protocol):
    """``adapter.kube.KubeClient`` in production."""

    async def review_own_access(self, attributes: dict[str, str]) -> dict: ...

    async def whoami(self) -> str | None: ...


async def check(client: SelfReviewer, fallback_username: str) -> tuple[Subject, list[Permission]]:
    """The adapter's identity and the permissions it lacks (empty: all is well).

    ``fallback_username`` names the adapter where the cluster has no SelfSubjectReview API.
    Raises ``kubeauth.ReviewUnavailable`` when the API cannot be asked.
    """
    subject = Subject(await client.whoami() or fallback_username)
    missing = []
    for permission in PERMISSIONS:
        status = await client.review_own_access({"resourceAttributes": permission.attributes()})
        if not status.get("allowed"):
            missing.append(permission)
    if missing:
        logger.error("preflight: missing %s", ", ".join(str(p) for p in missing))
    return subject, missing
