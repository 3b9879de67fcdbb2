"""The what-if simulator: a trace of traffic against HPA manifests, in virtual time.

``simulate(autoscaler, config)`` runs one manifest (see :mod:`simulator.run`); ``inference-adapter
simulate`` (:mod:`simulator.cli`) runs several, sweeps a value, and writes timelines, plots and a
summary. The pods are queues (:mod:`simulator.pods`), their pushes go into the adapter's own store
and provider, and the HPA is ``localcluster``'s controller and ``reconcile``.
"""

from simulator.pods import PodModel
from simulator.run import RunResult, SimulationConfig, SyncRow, simulate

__all__ = ["PodModel", "RunResult", "SimulationConfig", "SyncRow", "simulate"]
