"""HPA manifests for the simulator's tests: one ``autoscaling/v2`` document on Deployment
``ml/model`` with the metrics and behavior a test needs, as text (what ``--hpa`` files hold)."""

from __future__ import annotations

CONCURRENCY_3 = """\
    - type: Pods
      pods:
        metric: {name: inference_concurrency}
        target: {type: AverageValue, averageValue: "3"}
"""
"""Pods metric: 3 requests in flight per pod."""

P99_500MS = """\
    - type: Object
      object:
        describedObject: {apiVersion: apps/v1, kind: Deployment, name: model}
        metric: {name: inference_latency_p99_seconds}
        target: {type: Value, value: 500m}
"""
"""Object metric on the Deployment: a pooled p99 of 500 ms."""


def hpa_yaml(
    min_replicas: int, max_replicas: int, metrics: str = CONCURRENCY_3, behavior: str = ""
) -> str:
    """The manifest, ``metrics`` (and ``behavior``, if any) being YAML indented as above."""
    return (
        "apiVersion: autoscaling/v2\n"
        "kind: HorizontalPodAutoscaler\n"
        "metadata: {name: model, namespace: ml}\n"
        "spec:\n"
        "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: model}\n"
        f"  minReplicas: {min_replicas}\n"
        f"  maxReplicas: {max_replicas}\n"
        f"  metrics:\n{metrics}" + (f"  behavior:\n{behavior}" if behavior else "")
    )
