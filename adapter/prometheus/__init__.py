"""The Prometheus provider: the catalog from a Prometheus-compatible query API.

``sources`` says where each metric lives (data), ``promql`` writes the queries, ``engine``
sends them, ``histogram`` pools split answers, ``provider`` answers the seam.
"""

from adapter.prometheus.engine import BackendTelemetry, PrometheusClient
from adapter.prometheus.promql import Queries
from adapter.prometheus.provider import PrometheusProvider
from adapter.prometheus.sources import MODEL_SERVER, SeriesLabels, ServerSource

__all__ = [
    "MODEL_SERVER",
    "BackendTelemetry",
    "PrometheusClient",
    "PrometheusProvider",
    "Queries",
    "SeriesLabels",
    "ServerSource",
]
