"""The pods' side: the push client model servers embed (``pusher``), and the relay that pushes
for a real server from its ``/metrics`` (``relay``: ``reading`` and ``buckets`` are its cores).

Everything a pod needs to report to the adapter lives in this package; the public names are
re-exported here, so ``from adapter.client import PushClient`` keeps working.
"""

from adapter.client.pusher import (
    DEFAULT_MAX_BACKLOG_AGE_SECONDS,
    DEFAULT_RESOLVE_INTERVAL_SECONDS,
    PUSH_PATH,
    Contents,
    LatencyRecorder,
    PodIdentity,
    PushClient,
    Pusher,
    PushStats,
    Token,
    TokenFile,
    client_ssl_context,
    encode_report,
    parse_adapter_url,
)

__all__ = [
    "DEFAULT_MAX_BACKLOG_AGE_SECONDS",
    "DEFAULT_RESOLVE_INTERVAL_SECONDS",
    "PUSH_PATH",
    "Contents",
    "LatencyRecorder",
    "PodIdentity",
    "PushClient",
    "PushStats",
    "Pusher",
    "Token",
    "TokenFile",
    "client_ssl_context",
    "encode_report",
    "parse_adapter_url",
]
