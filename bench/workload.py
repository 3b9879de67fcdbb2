"""Realistic push reports: many pods, each with a ~50-bin latency sketch and two gauges.

Each pod has its own latency centre (between ~18 ms and ~300 ms) and every report carries
``BINS_PER_REPORT`` non-empty bins drawn from the 70 bins around it, so a pod's window sum stays
near 70 bins, as a steady model server's would. Bodies are made by ``adapter.client.encode_report``
(the real client encoder) once per pod, as a template split around ``seq``, so a load generator
can send a new, increasing ``seq`` per push without encoding JSON on its hot path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from adapter.client import PodIdentity, encode_report
from adapter.sketch import LatencySketch

NAMESPACE = "inference"
DEPLOYMENT = "model"
TEMPLATE_HASH = "7d4b9c5f8"
BINS_PER_REPORT = 50
BIN_SPREAD = 70
"""Each pod's bins come from this many consecutive bins around its centre."""
_SEQ_MARK = 987654321987654321


def identities(count: int, namespace: str = NAMESPACE) -> list[PodIdentity]:
    """``count`` pods of Deployment ``model``, labelled ``app=model``."""
    return [
        PodIdentity(
            namespace,
            f"{DEPLOYMENT}-{TEMPLATE_HASH}-{i:05d}",
            uid=f"00000000-0000-4000-8000-{i:012d}",
            labels={"app": "model", "pod-template-hash": TEMPLATE_HASH},
            deployment=DEPLOYMENT,
        )
        for i in range(count)
    ]


@dataclass
class PodLoad:
    """How one pod's reports look: its latency centre (a bin index)."""

    identity: PodIdentity
    centre: int


def pod_loads(count: int, namespace: str = NAMESPACE, seed: int = 1) -> list[PodLoad]:
    """``count`` pods with latency centres spread between about 18 ms and 300 ms."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(-200, -60, count)
    return [PodLoad(i, int(c)) for i, c in zip(identities(count, namespace), centres, strict=True)]


def latency_sketch(rng: np.random.Generator, centre: int) -> LatencySketch:
    """One interval's latencies: ``BINS_PER_REPORT`` non-empty bins around ``centre``."""
    start = centre - BIN_SPREAD // 2
    indices = np.sort(rng.choice(BIN_SPREAD, BINS_PER_REPORT, replace=False)) + start
    counts = rng.integers(1, 20, BINS_PER_REPORT)
    return LatencySketch(indices, counts)


def gauges(rng: np.random.Generator) -> dict[str, float]:
    """Queue depth and concurrency as a model server reports them."""
    queue = int(rng.integers(0, 20))
    return {"inference_queue_depth": queue, "inference_concurrency": queue + 8}


def report(
    rng: np.random.Generator, pod: PodLoad, seq: int, unix_time: float
) -> Mapping[str, object]:
    """One report of ``pod`` as the JSON document ``adapter.client`` sends."""
    return encode_report(pod.identity, seq, gauges(rng), latency_sketch(rng, pod.centre), unix_time)


def body(document: Mapping[str, object]) -> bytes:
    """The wire body of a report (compact JSON)."""
    return json.dumps(document, separators=(",", ":")).encode()


def body_template(rng: np.random.Generator, pod: PodLoad, unix_time: float) -> tuple[bytes, bytes]:
    """A report body split around its ``seq``: ``head + str(seq).encode() + tail``."""
    head, tail = body(report(rng, pod, _SEQ_MARK, unix_time)).split(str(_SEQ_MARK).encode())
    return head, tail
