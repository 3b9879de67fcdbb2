"""The store's memory budgets: what a pod holds is estimated in step with every change, the
estimate matches what Python allocates, and a pod or the store at its budget refuses what would
grow it (changing nothing) until the window frees room."""

from __future__ import annotations

import gc
import json
import tracemalloc

import numpy as np
import pytest

from adapter import push, sketch
from adapter.client import Contents, PodIdentity
from adapter.client.pusher import encode
from adapter.config import PushConfig, StoreConfig
from adapter.report import Report, Source
from adapter.resources import PodRef
from adapter.sketch import LatencySketch
from adapter.store import OverBudget, Store

NOW = 1_800_000_000.0
MAX_LABELS = {f"{'p' * 200}.example.com/{'k' * 60}{i:03d}": "v" * 63 for i in range(64)}
"""The most and the largest labels a push may carry."""
EVERY_BIN = dict.fromkeys(range(sketch.MIN_INDEX, sketch.MAX_INDEX + 1), 1)


def report(pod: str, seq: int, bins: dict[int, int] | None = None, **fields: object) -> Report:
    return Report(PodRef("ns", pod), "uid-1", seq, latency_bins=bins or {}, **fields)  # type: ignore[arg-type]


def total_of(store: Store) -> int:
    return sum(record.held_bytes() for record in store.pods(None))


def test_held_bytes_follow_every_change() -> None:
    rng = np.random.default_rng(5)
    store = Store(StoreConfig(window_seconds=5.0))
    seqs: dict[str, int] = {}
    now = NOW
    for step in range(1000):
        now += rng.uniform(0, 0.4)
        pod = f"p{rng.integers(12)}"
        action = rng.random()
        if action < 0.02:
            store.forget(PodRef("ns", pod))
            seqs.pop(pod, None)
        elif action < 0.04:
            store.sweep(now)
        elif action < 0.08:
            store.refresh_windows(list(store.pods(None)), now, slack_slices=int(rng.integers(2)))
        else:
            centre = int(rng.integers(-400, 300))
            indices = centre + rng.choice(200, int(rng.integers(0, 60)), replace=False)
            bins = {int(i): int(rng.integers(1, 9)) for i in indices}
            labels = {"app": "model", "v": str(rng.integers(3))}
            uid = f"uid-{rng.integers(2)}" if action > 0.97 else "uid-1"
            seqs[pod] = seqs.get(pod, 0) + 1
            store.apply(Report(PodRef("ns", pod), uid, seqs[pod], labels, latency_bins=bins), now)
        assert store.held_bytes == total_of(store), f"step {step}"


RELAYED_SOURCE = Source(
    "vllm",
    {"inference_concurrency": "vllm:num_requests_running is not in the server's metrics"},
    {"latency": tuple(0.3 * 1.5**k for k in range(21)), "time_to_first_token": (0.001, 0.01)},
)


def _held_and_allocated(
    pods: int, labels: dict[str, str], pushes: int, bins: int, relayed: bool = False
) -> tuple[float, float]:
    """Per pod: what the store estimates, and what decoding and applying allocated (a relay's
    reports: two sketches, counts and a source)."""
    rng = np.random.default_rng(2)
    store, known, limits = Store(StoreConfig(), max_pods=pods), push.KnownPods(pods), PushConfig()
    bodies = []
    for seq in range(1, pushes + 1):
        for i in range(pods):
            identity = PodIdentity("inference", f"model-{i:05d}", f"uid-{i:05d}", labels, "model")
            low = int(rng.integers(-300, -100))
            latencies = LatencySketch.from_bins({low + j: 3 for j in range(bins)})
            contents = Contents.of(latencies, {})
            if relayed:
                sketches = {"latency": latencies, "time_to_first_token": latencies}
                contents = Contents({}, sketches, 1024, 5, (1.0, 5), RELAYED_SOURCE)
            bodies.append(json.dumps(encode(identity, seq, contents, NOW)).encode())
    gc.collect()  # no other test's garbage freed while measuring
    gc.disable()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n, body in enumerate(bodies):
            store.apply(push.decode_report(body, limits, known), NOW + n / pods)
            known.remember_last()
        allocated = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        gc.enable()
    return store.held_bytes / pods, allocated / pods


@pytest.mark.parametrize(
    ("pods", "labels", "pushes", "bins", "relayed"),
    [
        (300, {}, 1, 0, False),
        (20, MAX_LABELS, 1, 0, False),
        (10, {"app": "model"}, 30, 50, False),
        (100, {}, 1, 0, True),
        (10, {"app": "model"}, 30, 300, True),
    ],
    ids=["bare", "largest-labels", "full-window", "relayed-bare", "relayed-full-window"],
)
def test_the_estimate_is_what_a_pod_costs(
    pods: int, labels: dict[str, str], pushes: int, bins: int, relayed: bool
) -> None:
    held, allocated = _held_and_allocated(pods, labels, pushes, bins, relayed)
    assert 0.8 < held / allocated < 1.25, f"estimated {held:.0f}, allocated {allocated:.0f}"


def test_the_largest_report_fits_the_smallest_pod_budget() -> None:
    store = Store(StoreConfig(pod_memory_budget_bytes=64 * 1024))
    store.apply(report("a", 1, EVERY_BIN, labels=MAX_LABELS), NOW)


def test_a_pod_over_its_budget_is_refused_until_its_window_frees_room() -> None:
    store = Store(StoreConfig(window_seconds=30.0, pod_memory_budget_bytes=128 * 1024))
    store.apply(report("quiet", 1, {-200: 1}), NOW)
    seq, now = 0, NOW
    with pytest.raises(
        OverBudget
    ) as refused:  # a pod pushing every bin there is, 20 times a second
        for seq in range(1, 1000):
            now = NOW + seq / 20
            store.apply(report("hog", seq, EVERY_BIN), now)
    assert "pod ns/hog would hold" in str(refused.value)
    assert refused.value.retry_after_seconds == 1
    hog = store.get(PodRef("ns", "hog"))
    assert hog is not None
    held, completed = store.held_bytes, hog.completed_requests()
    assert hog.held_bytes() <= 128 * 1024 < hog.held_bytes() + len(EVERY_BIN) * 7
    with pytest.raises(OverBudget):  # changes nothing
        store.apply(report("hog", seq, EVERY_BIN), now)
    assert (store.held_bytes, hog.completed_requests(), hog.last_seq) == (held, completed, seq - 1)
    store.apply(report("quiet", 2, {-200: 1}), now)  # other pods are not held back
    store.apply(report("hog", seq, EVERY_BIN), now + 30)  # the window slid: room again
    assert hog.completed_requests() == len(EVERY_BIN)


def test_at_the_store_budget_pods_may_not_grow_and_new_pods_wait() -> None:
    store = Store(StoreConfig(window_seconds=10.0, store_memory_budget_bytes=60_000))
    bins = {i: 1 for i in range(-300, -100)}  # 200 bins: 1.4 KB a push
    pods = [f"p{i}" for i in range(4)]
    now = NOW
    with pytest.raises(OverBudget) as refused:
        for seq in range(1, 11):  # four pods, a push each a second: 74 KB once the window is full
            now = NOW + seq
            for pod in pods:
                store.apply(report(pod, seq, bins), now)
    assert "bytes of pod data, near the 60,000" in str(refused.value)
    assert store.held_bytes <= 60_000
    with pytest.raises(OverBudget):
        store.apply(report("newcomer", 1), now)
    # Once a window is full, a push replaces what leaves it: the pod does not grow.
    for pod in pods:
        record = store.get(PodRef("ns", pod))
        assert record is not None
        store.apply(report(pod, record.last_seq + 1, bins), now + 10)
    assert store.held_bytes <= 60_000
    store.forget(PodRef("ns", "p0"))
    store.apply(report("newcomer", 1), now + 10)
