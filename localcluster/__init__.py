"""The local cluster: the cluster pieces around the adapter, on one machine.

The HPA controller as pure math (:mod:`~localcluster.hpa` is one pass, :func:`reconcile`;
:mod:`~localcluster.replica_calculator` the per-metric proposals; :mod:`~localcluster.scaling`
the behaviors) and the loop that drives it (:mod:`~localcluster.controller`, fetching through
:mod:`~localcluster.metrics_client` exactly as kube-controller-manager does); a Deployment's
replicas as ``model-server`` processes (:mod:`~localcluster.supervisor`) behind a Service-like
balancer (:mod:`~localcluster.balancer`); and :mod:`~localcluster.closedloop` and
:mod:`~localcluster.demo`, which run it all with the adapter. The math is pure: callers fetch,
it computes. This package exports the math; the rest is imported by module.
"""

from localcluster.hpa import (
    ControllerConfig,
    HorizontalPodAutoscaler,
    HpaSpec,
    HpaState,
    HpaStatus,
    ReconcileResult,
    Scale,
    reconcile,
)

__all__ = [
    "ControllerConfig",
    "HorizontalPodAutoscaler",
    "HpaSpec",
    "HpaState",
    "HpaStatus",
    "ReconcileResult",
    "Scale",
    "reconcile",
]
