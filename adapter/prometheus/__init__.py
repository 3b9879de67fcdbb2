"""The Prometheus provider: the catalog from a Prometheus-compatible query API.

``sources`` says how a server's metrics carry each signal (data), ``presets`` is the table of
servers (shared with the relay), ``promql`` writes the queries, ``engine`` sends them,
``histogram`` pools split answers, ``provider`` answers the seam.
"""

from adapter.prometheus.engine import BackendTelemetry, PrometheusClient
from adapter.prometheus.presets import MODEL_SERVER, PRESETS
from adapter.prometheus.promql import Queries
from adapter.prometheus.provider import PrometheusProvider
from adapter.prometheus.sources import Preset, SeriesLabels

__all__ = [
    "MODEL_SERVER",
    "PRESETS",
    "BackendTelemetry",
    "Preset",
    "PrometheusClient",
    "PrometheusProvider",
    "Queries",
    "SeriesLabels",
]
