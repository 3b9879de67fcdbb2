"""The local cluster: the HPA emulator's pure math (and, later, the loop that drives it).

:mod:`localcluster.hpa` is one controller pass (:func:`~localcluster.hpa.reconcile`) with its
normalization and defaulting; :mod:`localcluster.replica_calculator` holds the per-metric
replica proposals. Both are pure: callers fetch, they compute.
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
