"""Tests for adapter.store: de-duplication, incarnations, the sliding window, freshness, sweeping.

Time is a plain float passed as ``now``; nothing here sleeps or reads a clock.
"""

import gc
import tracemalloc
from collections.abc import Mapping

import numpy as np
import pytest

from adapter import sketch
from adapter.config import StoreConfig
from adapter.report import CONCURRENCY, QUEUE_DEPTH, Owner, Report
from adapter.resources import PodRef
from adapter.sketch import LatencySketch
from adapter.store import Applied, Store, StoreFull

CONFIG = StoreConfig(window_seconds=30.0, max_age_seconds=10.0, slice_seconds=1.0)
POD = PodRef("ns", "model-0")


def report(
    seq: int,
    *,
    pod: PodRef = POD,
    uid: str = "uid-1",
    gauges: Mapping[str, float] | None = None,
    bins: Mapping[int, int] | None = None,
    zero_count: int = 0,
    labels: Mapping[str, str] | None = None,
    owner: Owner | None = None,
) -> Report:
    return Report(
        pod=pod,
        uid=uid,
        seq=seq,
        labels={"app": "model"} if labels is None else labels,
        owner=owner,
        gauges={QUEUE_DEPTH: 1.0} if gauges is None else gauges,
        latency_bins=bins or {},
        latency_zero_count=zero_count,
    )


def window_of(store: Store, now: float, pod: PodRef = POD) -> LatencySketch:
    """The latencies of ``pod`` that the store would serve at ``now``."""
    record = store.get(pod)
    assert record is not None
    store.refresh_windows([record], now)
    return record.latency()


@pytest.fixture
def store() -> Store:
    return Store(CONFIG)


# --- first report ---------------------------------------------------------------------------


def test_first_report_is_accepted_and_recorded(store):
    owner = Owner("Deployment", "model")
    first = report(3, gauges={QUEUE_DEPTH: 2.0}, bins={-230: 4}, zero_count=1, owner=owner)
    assert store.apply(first, now=100.0) is Applied.ACCEPTED
    record = store.get(POD)
    assert record is not None
    assert (record.pod, record.uid, record.last_seq) == (POD, "uid-1", 3)
    assert (record.first_seen, record.last_seen) == (100.0, 100.0)
    assert record.labels == {"app": "model"}
    assert record.owner == owner
    assert record.gauges == {QUEUE_DEPTH: 2.0}
    assert record.latency() == LatencySketch.from_bins({-230: 4}, zero_count=1)
    assert record.completed_requests() == 5
    assert len(store) == 1
    assert store.namespaces() == ["ns"]


def test_unknown_pod_is_none(store):
    store.apply(report(1), now=0.0)
    assert store.get(PodRef("ns", "other")) is None
    assert store.get(PodRef("other", "model-0")) is None


# --- sequence numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("replayed_seq", [5, 4, 1])
def test_seq_not_above_the_last_is_a_duplicate_that_changes_nothing(store, replayed_seq):
    store.apply(report(5, gauges={QUEUE_DEPTH: 3.0}, bins={0: 2}), now=100.0)
    replay = report(
        replayed_seq,
        gauges={QUEUE_DEPTH: 99.0, CONCURRENCY: 99.0},
        bins={0: 2, 10: 7},
        zero_count=3,
        labels={"app": "other"},
        owner=Owner("Deployment", "other"),
    )
    assert store.apply(replay, now=105.0) is Applied.DUPLICATE
    record = store.get(POD)
    assert record.last_seq == 5
    assert record.last_seen == 100.0, "a duplicate is no sign of life"
    assert record.gauges == {QUEUE_DEPTH: 3.0}
    assert record.labels == {"app": "model"}
    assert record.owner is None
    assert window_of(store, 105.0) == LatencySketch.from_bins({0: 2})
    assert store.is_fresh(record, 110.0)
    assert not store.is_fresh(record, 110.5), "freshness still counts from the applied report"


def test_retrying_the_same_report_never_double_counts(store):
    sent = report(1, bins={-100: 10})
    outcomes = [store.apply(sent, now=100.0 + i / 10) for i in range(5)]
    assert outcomes == [Applied.ACCEPTED] + [Applied.DUPLICATE] * 4
    assert store.get(POD).completed_requests() == 10


def test_seq_gaps_are_fine_and_later_lower_seqs_are_duplicates(store):
    assert store.apply(report(5, bins={0: 1}), now=100.0) is Applied.ACCEPTED
    assert store.apply(report(9, bins={0: 1}), now=101.0) is Applied.ACCEPTED
    assert store.apply(report(6, bins={0: 1}), now=102.0) is Applied.DUPLICATE
    assert store.apply(report(10, bins={0: 1}), now=103.0) is Applied.ACCEPTED
    record = store.get(POD)
    assert (record.last_seq, record.last_seen, record.completed_requests()) == (10, 103.0, 3)


def test_pods_keep_separate_seq_histories(store):
    other = PodRef("ns", "model-1")
    assert store.apply(report(5), now=100.0) is Applied.ACCEPTED
    assert store.apply(report(1, pod=other), now=100.0) is Applied.ACCEPTED
    assert store.apply(report(2, pod=PodRef("ns2", "model-0")), now=100.0) is Applied.ACCEPTED
    assert len(store) == 3


# --- incarnations ---------------------------------------------------------------------------


def test_new_uid_starts_a_new_incarnation_and_drops_old_data(store):
    store.apply(
        report(40, gauges={QUEUE_DEPTH: 3.0, CONCURRENCY: 5.0}, bins={0: 9}, zero_count=2),
        now=100.0,
    )
    restarted = report(1, uid="uid-2", gauges={CONCURRENCY: 1.0}, bins={5: 1})
    assert store.apply(restarted, now=104.0) is Applied.NEW_INCARNATION
    record = store.get(POD)
    assert (record.uid, record.last_seq) == ("uid-2", 1)
    assert (record.first_seen, record.last_seen) == (104.0, 104.0)
    assert record.gauges == {CONCURRENCY: 1.0}
    assert window_of(store, 104.0) == LatencySketch.from_bins({5: 1})
    assert record.completed_requests() == 1
    assert len(store) == 1
    # seq starts over: seq 2 of the new incarnation is new, seq 1 a duplicate
    assert store.apply(report(2, uid="uid-2"), now=105.0) is Applied.ACCEPTED
    assert store.apply(report(1, uid="uid-2"), now=105.0) is Applied.DUPLICATE


def test_any_other_uid_is_a_new_incarnation_even_from_the_empty_uid(store):
    assert store.apply(report(1, uid=""), now=0.0) is Applied.ACCEPTED
    assert store.apply(report(1, uid="a"), now=1.0) is Applied.NEW_INCARNATION
    assert store.apply(report(1, uid=""), now=2.0) is Applied.NEW_INCARNATION
    assert len(store) == 1


# --- the window -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "left"),
    [
        (101.0, {0: 5, 10: 3, 20: 1}),
        (129.999, {0: 5, 10: 3, 20: 1}),
        (130.0, {10: 3, 20: 1}),
        (130.999, {10: 3, 20: 1}),
        (131.0, {20: 1}),
        (131.999, {20: 1}),
        (132.0, {}),
        (1e6, {}),
    ],
)
def test_latencies_leave_exactly_when_the_window_passes(store, now, left):
    store.apply(report(1, bins={0: 5}), now=100.0)
    store.apply(report(2, bins={10: 3}), now=101.0)
    store.apply(report(3, bins={20: 1}), now=102.0)
    assert window_of(store, now) == LatencySketch.from_bins(left)
    assert store.get(POD).completed_requests() == sum(left.values())


def test_zero_counts_leave_with_their_slice(store):
    store.apply(report(1, zero_count=4), now=100.0)
    store.apply(report(2, bins={1: 1}, zero_count=1), now=101.5)
    assert window_of(store, 129.0).zero_count == 5
    assert window_of(store, 130.0) == LatencySketch.from_bins({1: 1}, zero_count=1)
    assert window_of(store, 132.0).is_empty()


def test_reports_in_one_slice_leave_together(store):
    store.apply(report(1, bins={0: 1}), now=100.0)
    store.apply(report(2, bins={0: 2}), now=100.5)
    store.apply(report(3, bins={1: 4}), now=100.999)
    assert window_of(store, 129.999) == LatencySketch.from_bins({0: 3, 1: 4})
    assert window_of(store, 130.0).is_empty()


def test_a_new_report_also_expires_old_slices(store):
    store.apply(report(1, bins={0: 5}), now=100.0)
    store.apply(report(2, bins={7: 1}), now=130.5)
    record = store.get(POD)
    assert record.latency() == LatencySketch.from_bins({7: 1})
    assert record.completed_requests() == 1


def test_a_report_without_latencies_keeps_the_window(store):
    store.apply(report(1, bins={0: 5}), now=100.0)
    store.apply(report(2), now=110.0)
    assert window_of(store, 110.0) == LatencySketch.from_bins({0: 5})
    assert window_of(store, 130.0).is_empty()


@pytest.mark.parametrize(
    "config",
    [
        StoreConfig(window_seconds=30.0, slice_seconds=1.0),
        StoreConfig(window_seconds=5.0, slice_seconds=0.5),
        StoreConfig(window_seconds=60.0, max_age_seconds=20.0, slice_seconds=1.0),
        StoreConfig(window_seconds=10.0, slice_seconds=2.0),
    ],
    ids=lambda c: f"window={c.window_seconds}/slice={c.slice_seconds}",
)
def test_window_bounds_for_random_arrivals(config):
    """A report counts while younger than window - slice and never once the window passed."""
    rng = np.random.default_rng(20261128)
    store = Store(config)
    arrivals = np.sort(rng.uniform(1000.0, 1000.0 + 4 * config.window_seconds, size=200))
    for seq, arrival in enumerate(arrivals, start=1):
        store.apply(report(seq, bins={seq: 1}), now=float(arrival))
    record = store.get(POD)
    end = float(arrivals[-1])
    for now in np.linspace(end, end + config.window_seconds + 1.0, 97):
        store.refresh_windows([record], float(now))
        present = {int(i) for i in record.latency().indices}
        ages = {seq: float(now) - float(a) for seq, a in enumerate(arrivals, start=1)}
        young = {
            s for s, age in ages.items() if age <= config.window_seconds - config.slice_seconds
        }
        old = {s for s, age in ages.items() if age >= config.window_seconds}
        assert young <= present
        assert not present & old
        assert record.completed_requests() == len(present)


def test_merged_window_equals_the_sketch_of_all_values_in_it(store):
    rng = np.random.default_rng(7)
    batches = [rng.lognormal(np.log(0.05), 1.0, size=int(rng.integers(0, 50))) for _ in range(45)]
    for seq, values in enumerate(batches, start=1):
        latencies = LatencySketch.from_values(values)
        bins = dict(zip(latencies.indices.tolist(), latencies.counts.tolist(), strict=True))
        store.apply(report(seq, bins=bins), now=100.0 + seq)
    # at 146.5 the window holds the slices 117..146: the reports with seq 17..45
    expected = LatencySketch.from_values(np.concatenate(batches[16:]))
    assert window_of(store, 146.5) == expected


# --- freshness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "fresh"),
    [(0.0, True), (5.0, True), (10.0, True), (10.001, False), (11.0, False), (1e6, False)],
)
def test_freshness_is_the_max_age_since_the_last_applied_report(store, age, fresh):
    store.apply(report(1), now=100.0)
    store.apply(report(2), now=200.0)
    assert store.is_fresh(store.get(POD), 200.0 + age) is fresh


def test_freshness_uses_the_adapters_clock_not_the_pods():
    store = Store(StoreConfig(max_age_seconds=3.0))
    skewed = Report(pod=POD, uid="u", seq=1, pod_timestamp=0.0)
    store.apply(skewed, now=1_700_000_000.0)
    record = store.get(POD)
    assert store.is_fresh(record, 1_700_000_003.0)
    assert not store.is_fresh(record, 1_700_000_003.5)


# --- sweeping -------------------------------------------------------------------------------


def test_sweep_forgets_only_pods_silent_for_longer_than_forget_after(store):
    assert CONFIG.forget_after_seconds == 60.0
    silent = PodRef("ns", "silent")
    elsewhere = PodRef("other", "silent")
    store.apply(report(5, pod=silent), now=100.0)
    store.apply(report(5, pod=elsewhere), now=100.0)
    store.apply(report(1), now=100.0)
    store.apply(report(2), now=150.0)
    assert store.sweep(160.0) == 0, "silent for exactly forget_after: kept"
    assert len(store) == 3
    assert store.sweep(160.001) == 2
    assert len(store) == 1
    assert store.get(silent) is None
    assert store.get(elsewhere) is None
    assert store.get(POD).last_seq == 2
    assert store.namespaces() == ["ns"]
    assert [r.pod for r in store.pods(None)] == [POD]
    # a forgotten pod starts from scratch: seq 1 is new again
    assert store.apply(report(1, pod=silent), now=161.0) is Applied.ACCEPTED
    assert len(store) == 2


def test_a_duplicate_does_not_keep_a_pod_from_being_swept(store):
    store.apply(report(5), now=100.0)
    store.apply(report(5), now=159.0)
    assert store.sweep(160.5) == 1
    assert len(store) == 0
    assert store.namespaces() == []


def test_forget_after_doubles_the_longer_horizon():
    assert StoreConfig(window_seconds=30.0, max_age_seconds=10.0).forget_after_seconds == 60.0
    assert StoreConfig(window_seconds=5.0, max_age_seconds=40.0).forget_after_seconds == 80.0


# --- capacity -------------------------------------------------------------------------------


def test_store_full_refuses_new_pods_and_changes_nothing():
    store = Store(CONFIG, max_pods=2)
    first, second, third = PodRef("ns", "a"), PodRef("ns", "b"), PodRef("new", "c")
    store.apply(report(1, pod=first, bins={0: 1}), now=100.0)
    store.apply(report(1, pod=second), now=100.0)
    with pytest.raises(StoreFull, match="2 pods"):
        store.apply(report(1, pod=third), now=101.0)
    assert len(store) == 2
    assert store.get(third) is None
    assert store.namespaces() == ["ns"]
    assert sorted(r.pod.name for r in store.pods(None)) == ["a", "b"]
    # known pods still apply, and a new incarnation of a known pod is not a new pod
    assert store.apply(report(2, pod=first, bins={0: 1}), now=101.0) is Applied.ACCEPTED
    assert store.get(first).completed_requests() == 2
    assert store.apply(report(1, pod=second, uid="uid-2"), now=101.0) is Applied.NEW_INCARNATION
    assert store.apply(report(1, pod=second, uid="uid-2"), now=101.0) is Applied.DUPLICATE
    assert len(store) == 2
    # once a pod is swept there is room again
    store.apply(report(3, pod=first), now=140.0)
    assert store.sweep(161.5) == 1
    assert store.apply(report(1, pod=third), now=162.0) is Applied.ACCEPTED
    assert len(store) == 2


# --- what a report replaces -----------------------------------------------------------------


def test_a_gauge_missing_from_a_report_keeps_no_old_value(store):
    store.apply(report(1, gauges={QUEUE_DEPTH: 3.0, CONCURRENCY: 7.0}), now=100.0)
    store.apply(report(2, gauges={CONCURRENCY: 8.0}), now=101.0)
    assert store.get(POD).gauges == {CONCURRENCY: 8.0}
    store.apply(report(3, gauges={}), now=102.0)
    assert store.get(POD).gauges == {}


def test_labels_and_owner_follow_the_latest_report(store):
    store.apply(report(1, labels={"app": "a", "x": "1"}, owner=Owner("Deployment", "a")), now=0.0)
    store.apply(report(2, labels={"app": "b"}), now=1.0)
    record = store.get(POD)
    assert record.labels == {"app": "b"}
    assert record.owner is None


# --- queries --------------------------------------------------------------------------------


def test_pods_by_namespace(store):
    for namespace, name in [("b", "x"), ("a", "y"), ("a", "z")]:
        store.apply(report(1, pod=PodRef(namespace, name)), now=0.0)
    assert store.namespaces() == ["a", "b"]
    assert sorted(r.pod.name for r in store.pods("a")) == ["y", "z"]
    assert [r.pod.name for r in store.pods("b")] == ["x"]
    assert list(store.pods("missing")) == []
    assert sorted(str(r.pod) for r in store.pods(None)) == ["a/y", "a/z", "b/x"]


@pytest.mark.parametrize(
    ("now", "covered"),
    [(100.0, 1.0), (100.5, 1.5), (110.0, 11.0), (129.0, 30.0), (500.0, 30.0)],
)
def test_covered_seconds_grows_to_the_window(store, now, covered):
    store.apply(report(1), now=100.0)
    record = store.get(POD)
    assert record.covered_seconds(now, CONFIG.window_seconds, CONFIG.slice_seconds) == covered


def test_a_clock_stepping_back_keeps_slices_in_order(store):
    store.apply(report(1, bins={10: 1}), now=100.5)
    store.apply(report(2, bins={20: 2}), now=97.2)  # the adapter's clock stepped back 3.3 s
    store.apply(report(3, bins={30: 4}), now=101.5)
    # The late report joined the newest slice (100), so it leaves the window with that slice:
    # when the slice's start is a window ago.
    assert window_of(store, now=129.99).count == 7
    assert window_of(store, now=130.0).count == 4
    assert window_of(store, now=131.0).count == 0


def test_window_equals_the_sum_of_the_reports_still_in_it():
    """Bins anywhere in the index range, several pushes per slice (a bin repeated within a
    slice), the band growing both ways: the window is always the exact sum of what is left."""
    rng = np.random.default_rng(7)
    store = Store(CONFIG)
    sent: list[tuple[float, dict[int, int], int]] = []
    now = 5000.0
    for seq in range(1, 400):
        now += float(rng.choice([0.0, 0.1, 0.4, 1.0, 3.0]))
        centre = int(rng.integers(sketch.MIN_INDEX, sketch.MAX_INDEX + 1))
        indices = np.clip(
            centre + rng.integers(-40, 40, size=int(rng.integers(0, 30))),
            sketch.MIN_INDEX,
            sketch.MAX_INDEX,
        )
        bins = {int(i): int(rng.integers(1, 2**32)) for i in indices}
        zero = int(rng.integers(0, 3))
        store.apply(report(seq, bins=bins, zero_count=zero), now)
        sent.append((now, bins, zero))
        record = store.get(POD)
        store.refresh_windows([record], now)
        oldest = np.floor((now - CONFIG.window_seconds) / CONFIG.slice_seconds) + 1
        expected: dict[int, int] = {}
        expected_zero = 0
        for arrival, sent_bins, sent_zero in sent:
            if np.floor(arrival / CONFIG.slice_seconds) >= oldest:
                for index, count in sent_bins.items():
                    expected[index] = expected.get(index, 0) + count
                expected_zero += sent_zero
        assert record.window_bins == expected
        assert record.window_zero_count == expected_zero
        assert record.completed_requests() == sum(expected.values()) + expected_zero
        assert record.latency() == LatencySketch.from_bins(expected, expected_zero)


def test_a_full_window_costs_under_16_kib_per_pod():
    """200 pods, one 50-bin report a second for 35 s: the window keeps 30 s of them compactly."""
    rng = np.random.default_rng(3)
    store = Store(CONFIG)
    pods = [PodRef("ns", f"model-{i}") for i in range(200)]
    centres = rng.integers(-250, -50, size=len(pods))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for second in range(35):
        for pod, centre in zip(pods, centres, strict=True):
            indices = centre + np.sort(rng.choice(70, 50, replace=False))
            bins = dict(zip(indices.tolist(), rng.integers(1, 20, 50).tolist(), strict=True))
            store.apply(report(second + 1, pod=pod, bins=bins), 9000.0 + second)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per_pod = used / len(pods)
    assert store.get(pods[0]).completed_requests() > 0
    assert per_pod < 16 * 1024, f"{per_pod:.0f} bytes per pod"


def test_an_outlier_that_left_the_window_does_not_keep_the_band_wide(store):
    store.apply(report(1, bins={sketch.MIN_INDEX: 1, sketch.MAX_INDEX: 1, -200: 1}), 100.0)
    record = store.get(POD)
    assert len(record.window_band[1]) == sketch.MAX_INDEX - sketch.MIN_INDEX + 1
    for second in range(1, 40):
        store.apply(report(1 + second, bins={-200: 1, -190: 2}), 100.0 + second)
    _, band = record.window_band
    assert len(band) < 64
    assert record.window_bins == {-200: 30, -190: 60}


def test_has_names_tracked_pods(store):
    store.apply(report(1), 100.0)
    assert store.has(POD.namespace, POD.name)
    assert not store.has(POD.namespace, "other") and not store.has("other", POD.name)


@pytest.mark.parametrize(
    "config",
    [CONFIG, StoreConfig(window_seconds=10.0, max_age_seconds=5.0, slice_seconds=0.5)],
    ids=lambda c: f"slice={c.slice_seconds}",
)
def test_query_slack_keeps_at_most_one_slice_more_than_the_window(config):
    """refresh_windows(slack_slices=1), as queries call it, may skip pods that pushed within
    the last slice, yet what stays is the window plus at most one slice, never less."""
    rng = np.random.default_rng(11)
    for trial in range(300):
        store = Store(config)
        arrivals = np.sort(
            rng.uniform(0.0, 3 * config.window_seconds, size=int(rng.integers(1, 40)))
        )
        for seq, arrival in enumerate(arrivals, start=1):
            store.apply(report(seq, bins={seq: 1}), now=1000.0 + float(arrival))
        now = 1000.0 + float(arrivals[-1]) + float(rng.uniform(0.0, 3 * config.slice_seconds))
        record = store.get(POD)
        store.refresh_windows([record], now, slack_slices=1)
        present = {int(i) for i in record.latency().indices}
        ages = {seq: now - 1000.0 - float(a) for seq, a in enumerate(arrivals, start=1)}
        young = {
            s for s, age in ages.items() if age <= config.window_seconds - config.slice_seconds
        }
        too_old = {
            s for s, age in ages.items() if age >= config.window_seconds + config.slice_seconds
        }
        assert young <= present, f"trial {trial}: lost reports still inside the window"
        assert not (too_old & present), f"trial {trial}: kept reports over a slice too old"


def test_remembered_selections_follow_membership_and_hold_no_pod_that_is_gone(store):
    for i in range(3):
        store.apply(report(1, pod=PodRef("ns", f"p{i}")), now=1000.0)
    everyone = store.selection("all", "ns", lambda r: True)
    assert [r.pod.name for r in everyone[0]] == ["p0", "p1", "p2"]
    assert everyone[1] == 3
    assert store.selection("all", "ns", lambda r: False) is everyone, "not remembered"
    store.apply(report(2, pod=PodRef("ns", "p0")), now=1001.0)  # identity unchanged
    assert store.selection("all", "ns", lambda r: False) is everyone
    store.apply(report(3, pod=PodRef("ns", "p0"), labels={"app": "new"}), now=1002.0)
    assert store.selection("all", "ns", lambda r: False) == ((), 3), "kept across a relabel"
    assert store.sweep(1000.0 + CONFIG.forget_after_seconds + 10) == 3
    assert store._selections == {}, "a remembered selection kept swept pods in memory"


def test_remembered_selections_drop_the_least_recently_asked(store, monkeypatch):
    monkeypatch.setattr("adapter.store.MAX_KEPT_SELECTIONS", 2)
    store.apply(report(1), now=1000.0)
    first = store.selection("a", "ns", lambda r: True)
    store.selection("b", "ns", lambda r: True)
    assert store.selection("a", "ns", lambda r: False) is first  # "a" asked again: recent
    store.selection("c", "ns", lambda r: True)  # evicts "b", the least recently asked
    assert store.selection("a", "ns", lambda r: False) is first
    assert store.selection("b", "ns", lambda r: False) == ((), 1)


def test_steady_pushes_leave_no_new_objects_for_the_cyclic_collector(store):
    """A pod pushing once a second, each push expiring a slice: after the push, nothing it made
    is still tracked by the collector (a new long-lived object per pod a second would be
    promoted to the old generation and make full collections frequent and long)."""
    bins = {-150 + i: 3 for i in range(50)}
    reports = [report(seq=seq, bins=bins, gauges={QUEUE_DEPTH: 2.0}) for seq in range(1, 80)]
    for now, pushed in enumerate(reports[:40]):  # a full window, then slices start leaving
        store.apply(pushed, 1000.0 + now)
    gc.collect()
    gc.freeze()  # everything so far out of the way: what the next pushes leave is all there is
    try:
        for now, pushed in enumerate(reports[40:], start=40):
            store.apply(pushed, 1000.0 + now)
        gc.collect(0)  # what survives the young generation moves to the next one
        survivors = gc.get_objects(1)
    finally:
        gc.unfreeze()
    assert [type(o).__name__ for o in survivors] == []
