"""The Kubernetes resources the custom metrics API can describe, how clients spell them, and
``PodRef``, the name of one pod that every layer (push, store, provider, API) keys by.

The HPA sends the group-qualified plural (``pods``, ``deployments.apps``); people type singulars
and short names. ``normalize`` maps every spelling to the canonical one so that no request fails
on spelling alone (a well-known pain point of other adapters). Pure data and lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Resource:
    """One resource the API knows by name."""

    group_resource: str
    """Canonical ``<plural>[.<group>]``, as ``GroupResource.String()`` prints it."""
    kind: str
    api_version: str
    namespaced: bool
    aliases: tuple[str, ...] = ()


PODS = Resource("pods", "Pod", "v1", True, ("pod", "po"))
DEPLOYMENTS = Resource(
    "deployments.apps",
    "Deployment",
    "apps/v1",
    True,
    ("deployments", "deployment", "deployment.apps", "deploy", "deploy.apps"),
)
NAMESPACES = Resource("namespaces", "Namespace", "v1", False, ("namespace", "ns"))
SERVICES = Resource("services", "Service", "v1", True, ("service", "svc"))

KNOWN = (PODS, DEPLOYMENTS, NAMESPACES, SERVICES)
_BY_SPELLING = {
    spelling: resource
    for resource in KNOWN
    for spelling in (resource.group_resource, *resource.aliases)
}


def normalize(spelling: str) -> str:
    """The canonical group-resource for a spelling; unknown spellings come back lower-cased.

    >>> normalize("deploy")
    'deployments.apps'
    >>> normalize("Pods")
    'pods'
    """
    lowered = spelling.lower()
    resource = _BY_SPELLING.get(lowered)
    return resource.group_resource if resource else lowered


def lookup(group_resource: str) -> Resource | None:
    """The resource for a canonical group-resource, or None when the adapter does not know it."""
    return _BY_SPELLING.get(group_resource)


class PodRef(NamedTuple):
    """A pod by namespace and name: the key under which the store keeps its data and the API
    describes a pod (a NamedTuple: hashed and compared at C speed on every push and query)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"
