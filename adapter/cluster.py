"""The cluster view seam: what the provider asks about real pods and workloads (cluster mode).

``adapter.kube.ClusterView`` fills these from informers; ``adapter.store_provider.StoreProvider``
reads them to resolve selectors, ``deployments.apps`` and ``services`` against the pods that
exist, and the push handler uses them to refuse pushes for pods that do not. Standalone, there is
no view and pushed labels stand in for the real ones.

Pure data and a ``Protocol``: no I/O, no ``kubernetes`` import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from adapter import selectors


@dataclass(frozen=True)
class ClusterPod:
    """A pod as the cluster knows it."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    owner: tuple[str, str] | None = None
    """The controlling owner reference as (kind, name), e.g. ("ReplicaSet", "model-7d4b9c")."""


@dataclass(frozen=True)
class Workload:
    """A Deployment or Service: its own labels, and the selector that picks its pods."""

    group_resource: str
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    selector: selectors.Selector | None = None
    """None selects no pod (a Service without a selector, or a selector that did not parse)."""

    def selects(self, pod: ClusterPod) -> bool:
        """Whether ``pod`` belongs to this workload (same namespace, selector matches)."""
        return (
            self.selector is not None
            and pod.namespace == self.namespace
            and self.selector.matches(pod.labels)
        )


class PodView(Protocol):
    """Read access to the cluster's pods and workloads. Called on the event loop only."""

    def pod(self, namespace: str, name: str) -> ClusterPod | None:
        """The pod, or None if the cluster has no such pod."""
        ...

    def pods(self, namespace: str | None) -> Iterable[ClusterPod]:
        """Every pod of ``namespace`` (None: all namespaces)."""
        ...

    def deployment_of(self, pod: ClusterPod) -> str | None:
        """The name of the Deployment that owns ``pod`` through its ReplicaSet, or None."""
        ...

    def workload(self, group_resource: str, namespace: str, name: str) -> Workload | None:
        """A ``deployments.apps`` or ``services`` object, or None if it does not exist."""
        ...

    def workloads(self, group_resource: str, namespace: str | None) -> Iterable[Workload]:
        """Every object of ``group_resource`` in ``namespace`` (None: all namespaces)."""
        ...
