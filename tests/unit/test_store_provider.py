"""Tests for adapter.store_provider: the catalog computed from pushed data, per pod and pooled.

The provider's clock is a ``Clock`` the tests set by hand; pushes go straight into a ``Store``.
Latency expectations come from ``numpy.quantile`` on the raw samples the pods pushed.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from adapter import catalog, resources, selectors
from adapter.config import StoreConfig
from adapter.errors import ApiError
from adapter.provider import CustomMetricInfo, ObjectReference
from adapter.report import CONCURRENCY, QUEUE_DEPTH, SERVICE_TIME, Owner, Report, Sketch
from adapter.resources import PodRef
from adapter.sketch import RELATIVE_ACCURACY, LatencySketch
from adapter.store import Store
from adapter.store_provider import StoreProvider

NS = "inference"
EVERYTHING = selectors.EVERYTHING
TOLERANCE = RELATIVE_ACCURACY * (1 + 1e-9)
RPS = "inference_requests_per_second"
P99 = "inference_latency_p99_seconds"
QUANTILES = [m for m in catalog.METRICS if m.signal is catalog.Signal.LATENCY]
NOT_PUSHED = (catalog.Signal.TIME_TO_FIRST_TOKEN, catalog.Signal.KV_CACHE_UTILIZATION)
"""Signals the pods of these tests do not report."""


class Clock:
    """The provider's clock: a float the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def info(resource: resources.Resource, metric: str) -> CustomMetricInfo:
    return CustomMetricInfo(resource.group_resource, resource.namespaced, metric)


def as_sketch(values: Sequence[float] | np.ndarray) -> Sketch:
    """``values`` (seconds) as a report's sketch, as the push client makes it."""
    made = LatencySketch.from_values(np.asarray(values, dtype=np.float64))
    return Sketch(
        dict(zip(made.indices.tolist(), made.counts.tolist(), strict=True)), made.zero_count
    )


class Cluster:
    """A store, a provider on a hand-set clock, and the raw latencies every pod pushed."""

    def __init__(self, config: StoreConfig | None = None, now: float = 1000.0) -> None:
        self.store = Store(config or StoreConfig())
        self.clock = Clock(now)
        self.provider = StoreProvider(self.store, clock=self.clock)
        self._seq: dict[PodRef, int] = {}
        self.raw: dict[PodRef, list[tuple[float, np.ndarray]]] = {}

    def push(
        self,
        name: str,
        at: float,
        *,
        namespace: str = NS,
        deployment: str | None = "model",
        gauges: Mapping[str, float] | None = None,
        latencies: Sequence[float] | np.ndarray = (),
        labels: Mapping[str, str] | None = None,
        owner: Owner | None = None,
        service_times: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        pod = PodRef(namespace, name)
        self._seq[pod] = self._seq.get(pod, 0) + 1
        values = np.asarray(latencies, dtype=np.float64)
        latency = as_sketch(values)
        if owner is None and deployment is not None:
            owner = Owner("Deployment", deployment)
        self.store.apply(
            Report(
                pod=pod,
                uid=f"{name}-uid",
                seq=self._seq[pod],
                labels={"app": "model"} if labels is None else labels,
                owner=owner,
                gauges={QUEUE_DEPTH: 1.0, CONCURRENCY: 2.0} if gauges is None else gauges,
                latency_bins=latency.bins,
                latency_zero_count=latency.zero_count,
                sketches={} if service_times is None else {SERVICE_TIME: as_sketch(service_times)},
            ),
            now=at,
        )
        self.raw.setdefault(pod, []).append((at, values))

    def samples(self, *names: str, since: float, namespace: str = NS) -> np.ndarray:
        """The raw latencies the named pods pushed at ``since`` or later."""
        return np.concatenate(
            [
                values
                for name in names
                for at, values in self.raw[PodRef(namespace, name)]
                if at >= since
            ]
        )

    async def by_name(
        self,
        resource: resources.Resource,
        metric: str,
        name: str,
        metric_selector: selectors.Selector = EVERYTHING,
    ):
        namespace = NS if resource.namespaced else None
        return await self.provider.get_metric_by_name(
            info(resource, metric), namespace, name, metric_selector
        )

    async def by_selector(
        self,
        resource: resources.Resource,
        metric: str,
        selector: str = "",
        metric_selector: str = "",
        namespace: str | None = NS,
    ):
        return await self.provider.get_metric_by_selector(
            info(resource, metric),
            namespace if resource.namespaced else None,
            selectors.parse(selector),
            selectors.parse(metric_selector),
        )

    async def external(self, metric: str, selector: str = "", namespace: str = NS):
        return await self.provider.get_external_metric(namespace, metric, selectors.parse(selector))


async def not_found(call) -> str:
    """Await ``call`` expecting a 404 ApiError; return its message."""
    with pytest.raises(ApiError) as caught:
        await call
    assert (caught.value.code, caught.value.reason) == (404, "NotFound")
    return caught.value.message


def relative_error(value: float, exact: float) -> float:
    return abs(value - exact) / exact


# --- one pod, every metric ------------------------------------------------------------------


@pytest.fixture
def steady() -> Cluster:
    """One pod pushing 20 requests a second for 40 s; the last push at 1039 changes the gauges."""
    cluster = Cluster()
    rng = np.random.default_rng(1)
    for second in range(40):
        cluster.push(
            "model-0",
            1000.0 + second,
            gauges={QUEUE_DEPTH: 3.0, CONCURRENCY: 7.5}
            if second < 39
            else {QUEUE_DEPTH: 4.0, CONCURRENCY: 9.25},
            latencies=rng.lognormal(np.log(0.05), 1.0, size=20),
        )
    cluster.clock.now = 1039.5
    return cluster


def expected_per_pod(cluster: Cluster, metric: catalog.Metric) -> float:
    # the window at 1039.5 holds the slices 1010..1039: 30 pushes of 20 requests
    if metric.name == QUEUE_DEPTH:
        return 4.0
    if metric.name == CONCURRENCY:
        return 9.25
    if metric.name == RPS:
        return 30 * 20 / 30.0
    samples = cluster.samples("model-0", since=1010.0)
    if metric.kind is catalog.Kind.MEAN:
        return float(np.mean(samples))
    return float(np.quantile(samples, metric.quantile))


POD_METRICS = [m for m in catalog.METRICS if m.serves(resources.PODS.group_resource)]
PUSHED = [m for m in POD_METRICS if m.signal not in NOT_PUSHED]


@pytest.mark.parametrize("metric", PUSHED, ids=lambda m: m.name)
async def test_per_pod_value_of_every_metric(steady, metric):
    value = await steady.by_name(resources.PODS, metric.name, "model-0")
    assert value.described_object == ObjectReference("Pod", "v1", "model-0", NS)
    assert value.metric == metric.name
    assert value.timestamp == 1039.0
    assert value.window_seconds == (30 if metric.windowed else None)
    assert value.metric_selector == EVERYTHING
    expected = expected_per_pod(steady, metric)
    if metric.kind in (catalog.Kind.QUANTILE, catalog.Kind.MEAN):
        assert relative_error(value.value, expected) <= TOLERANCE
    else:
        assert value.value == pytest.approx(expected, rel=1e-12)
    [listed] = await steady.by_selector(resources.PODS, metric.name, "app=model")
    assert listed == value


async def test_latency_quantiles_are_ordered(steady):
    values = [(await steady.by_name(resources.PODS, m.name, "model-0")).value for m in QUANTILES]
    assert values == sorted(values)
    assert values[0] < values[-1]


async def test_pod_that_served_nothing_in_the_window_has_zero_latency_and_rate():
    cluster = Cluster()
    cluster.push("idle", 950.0, latencies=[0.5, 0.7])
    cluster.push("idle", 999.0)
    for metric in (RPS, *(m.name for m in QUANTILES)):
        assert (await cluster.by_name(resources.PODS, metric, "idle")).value == 0.0


# --- request rate ---------------------------------------------------------------------------


async def test_rate_of_a_young_pod_counts_only_the_time_it_existed():
    cluster = Cluster()
    for second in range(3):
        cluster.push("young", 1000.0 + second, latencies=np.full(6, 0.01))
    cluster.clock.now = 1002.0
    # 18 requests over 2 s of life plus the slice its first report covers
    assert (await cluster.by_name(resources.PODS, RPS, "young")).value == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("now", "rate"),
    [
        (1029.0, 10.0),  # slices 1000..1029 hold 30 pushes of 10
        (1045.0, 14 * 10 / 30),  # slices 1016..1045: 14 with requests
        (1059.0, 0.0),  # only gauge pushes left in the window
    ],
)
async def test_rate_falls_as_requests_leave_the_window(now, rate):
    cluster = Cluster()
    for second in range(round(now) - 1000 + 1):
        latencies = np.full(10, 0.02) if second < 30 else ()
        cluster.push("p", 1000.0 + second, latencies=latencies)
    cluster.clock.now = now
    assert (await cluster.by_name(resources.PODS, RPS, "p")).value == pytest.approx(rate)
    p99 = (await cluster.by_name(resources.PODS, P99, "p")).value
    assert p99 == (0.0 if rate == 0 else pytest.approx(0.02, rel=TOLERANCE))


async def test_deployment_rate_is_the_sum_of_its_pods():
    cluster = Cluster()
    for second in range(30):
        cluster.push("a", 970.0 + second, latencies=np.full(4, 0.01))
        cluster.push("b", 970.0 + second, latencies=np.full(6, 0.01))
        cluster.push("c", 970.0 + second, latencies=np.full(50, 0.01), deployment="other")
    cluster.clock.now = 999.5
    value = await cluster.by_name(resources.DEPLOYMENTS, RPS, "model")
    assert value.value == pytest.approx(10.0)
    assert value.window_seconds == 30


# --- deployments: sums and pooled quantiles -------------------------------------------------


@pytest.fixture
def mixed() -> Cluster:
    """Deployment "model" with a fast busy pod, a slow quiet pod and a middling one, each pushing
    twice (two time slices); plus a pod of deployment "other" and one without an owner."""
    cluster = Cluster()
    rng = np.random.default_rng(20261128)
    shapes = {"fast": (0.02, 0.3, 1000), "slow": (2.0, 0.3, 100), "middle": (0.2, 0.5, 500)}
    gauges = {"fast": (1.0, 4.0), "slow": (7.0, 9.0), "middle": (0.5, 2.5)}
    for at in (998.5, 999.5):
        for name, (median, sigma, n) in shapes.items():
            cluster.push(
                name,
                at,
                gauges={QUEUE_DEPTH: gauges[name][0], CONCURRENCY: gauges[name][1]},
                latencies=rng.lognormal(np.log(median), sigma, size=n),
            )
        cluster.push(
            "other-0",
            at,
            deployment="other",
            gauges={QUEUE_DEPTH: 100.0},
            latencies=rng.lognormal(np.log(30.0), 0.1, size=50),
        )
        cluster.push(
            "loner", at, deployment=None, gauges={QUEUE_DEPTH: 1000.0}, latencies=np.full(10, 60.0)
        )
    cluster.clock.now = 1000.0
    return cluster


MODEL_PODS = ("fast", "slow", "middle")


@pytest.mark.parametrize(("metric", "total"), [(QUEUE_DEPTH, 8.5), (CONCURRENCY, 15.5)])
async def test_deployment_gauges_are_summed(mixed, metric, total):
    value = await mixed.by_name(resources.DEPLOYMENTS, metric, "model")
    assert value.value == total
    assert value.described_object == ObjectReference("Deployment", "apps/v1", "model", NS)
    assert value.timestamp == 999.5
    assert value.window_seconds is None


@pytest.mark.parametrize("metric", QUANTILES, ids=lambda m: m.name)
async def test_deployment_quantile_is_the_quantile_of_the_pooled_latencies(mixed, metric):
    union = mixed.samples(*MODEL_PODS, since=0.0)
    value = await mixed.by_name(resources.DEPLOYMENTS, metric.name, "model")
    assert relative_error(value.value, float(np.quantile(union, metric.quantile))) <= TOLERANCE
    assert value.window_seconds == 30


async def test_deployment_p99_is_not_an_average_of_pod_p99s(mixed):
    pooled = (await mixed.by_name(resources.DEPLOYMENTS, P99, "model")).value
    per_pod = [(await mixed.by_name(resources.PODS, P99, pod)).value for pod in MODEL_PODS]
    for pod, p99 in zip(MODEL_PODS, per_pod, strict=True):
        exact = float(np.quantile(mixed.samples(pod, since=0.0), 0.99))
        assert relative_error(p99, exact) <= TOLERANCE
    average = sum(per_pod) / len(per_pod)
    assert relative_error(average, pooled) > 0.25
    # and neither is it the slowest pod's p99 (the slow pod sends under 7 % of the requests)
    assert relative_error(max(per_pod), pooled) > 0.05


async def test_deployments_by_selector_one_value_each(mixed):
    values = await mixed.by_selector(resources.DEPLOYMENTS, QUEUE_DEPTH)
    by_name = {v.described_object.name: v.value for v in values}
    assert by_name == {"model": 8.5, "other": 100.0}
    for value in values:
        assert value.described_object.kind == "Deployment"
        assert value.described_object.namespace == NS


async def test_namespace_aggregates_every_pod_in_it(mixed):
    mixed.push("elsewhere", 999.0, namespace="other-ns", gauges={QUEUE_DEPTH: 5.0})
    value = await mixed.by_name(resources.NAMESPACES, QUEUE_DEPTH, NS)
    assert value.value == 8.5 + 100.0 + 1000.0
    assert value.described_object == ObjectReference("Namespace", "v1", NS)
    p99 = await mixed.by_name(resources.NAMESPACES, P99, NS)
    union = mixed.samples(*MODEL_PODS, "other-0", "loner", since=0.0)
    assert relative_error(p99.value, float(np.quantile(union, 0.99))) <= TOLERANCE
    listed = await mixed.by_selector(resources.NAMESPACES, QUEUE_DEPTH, namespace=None)
    assert {v.described_object.name: v.value for v in listed} == {NS: 1108.5, "other-ns": 5.0}


async def test_latency_merges_across_time_slices_within_the_window(mixed):
    # at 1028.7 the window (slices 999..1028) has lost the pushes at 998.5
    mixed.clock.now = 1028.7
    mixed.push("fast", 1028.6, latencies=[0.02])
    mixed.push("slow", 1028.6, latencies=[2.0])
    mixed.push("middle", 1028.6, latencies=[0.2])
    union = mixed.samples(*MODEL_PODS, since=999.0)
    value = await mixed.by_name(resources.DEPLOYMENTS, P99, "model")
    assert relative_error(value.value, float(np.quantile(union, 0.99))) <= TOLERANCE
    assert value.timestamp == 1028.6


# --- staleness ------------------------------------------------------------------------------


async def test_stale_pods_are_left_out_of_every_answer():
    cluster = Cluster()
    cluster.push("fresh", 995.0, gauges={QUEUE_DEPTH: 2.0}, latencies=np.full(100, 0.01))
    cluster.push("stale", 989.0, gauges={QUEUE_DEPTH: 50.0}, latencies=np.full(100, 5.0))
    cluster.clock.now = 1000.0  # the stale pod last pushed 11 s ago, the max age is 10 s
    deployment = await cluster.by_name(resources.DEPLOYMENTS, QUEUE_DEPTH, "model")
    assert (deployment.value, deployment.timestamp) == (2.0, 995.0)
    p99 = await cluster.by_name(resources.DEPLOYMENTS, P99, "model")
    assert relative_error(p99.value, 0.01) <= TOLERANCE
    pods = await cluster.by_selector(resources.PODS, QUEUE_DEPTH, "app=model")
    assert [v.described_object.name for v in pods] == ["fresh"]
    [series] = await cluster.external(QUEUE_DEPTH)
    assert series.value == 2.0
    message = await not_found(cluster.by_name(resources.PODS, QUEUE_DEPTH, "stale"))
    assert message == f"pod {NS}/stale last pushed 11s ago, more than the max age of 10s"


@pytest.mark.parametrize(("now", "served"), [(1005.0, True), (1010.0, True), (1010.01, False)])
async def test_a_pod_is_served_up_to_the_max_age(now, served):
    cluster = Cluster()
    cluster.push("p", 1000.0)
    cluster.clock.now = now
    call = cluster.by_name(resources.PODS, QUEUE_DEPTH, "p")
    if served:
        assert (await call).value == 1.0
    else:
        assert "max age of 10s" in await not_found(call)


# --- 404s that say why ----------------------------------------------------------------------


@pytest.fixture
def quiet() -> Cluster:
    """Five pods in the namespace: three app=model pods (stale), two app=web pods (fresh)."""
    cluster = Cluster()
    for name in ("m0", "m1", "m2"):
        cluster.push(name, 900.0)
    for name in ("w0", "w1"):
        cluster.push(name, 999.0, labels={"app": "web"}, deployment="web", gauges={})
    return cluster


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=model", "matched 3 of 5 pods tracked in namespace inference; 0 pushed within"),
        ("app=nothing", "matched 0 of 5 pods tracked in namespace inference; 0 pushed within"),
        ("app", "matched 5 of 5 pods tracked in namespace inference; 2 pushed within"),
        ("app=web", "matched 2 of 5 pods tracked in namespace inference; 2 pushed within"),
    ],
)
async def test_pod_selector_404_counts_matched_and_fresh_pods(quiet, selector, expected):
    message = await not_found(quiet.by_selector(resources.PODS, QUEUE_DEPTH, selector))
    assert expected in message
    assert repr(selector) in message
    assert "max age of 10s" in message


async def test_pod_selector_404_when_fresh_pods_lack_the_gauge(quiet):
    message = await not_found(quiet.by_selector(resources.PODS, QUEUE_DEPTH, "app=web"))
    assert message.endswith(
        "2 pushed within the max age of 10s, but they reported no inference_queue_depth"
    )


async def test_empty_namespace_404(quiet):
    message = await not_found(quiet.by_selector(resources.PODS, QUEUE_DEPTH, namespace="empty"))
    assert "'(everything)' matched 0 of 0 pods tracked in namespace empty" in message


async def test_pod_never_pushed_404(quiet):
    message = await not_found(quiet.by_name(resources.PODS, QUEUE_DEPTH, "ghost"))
    assert message == f"pod {NS}/ghost has never pushed metrics"


async def test_pod_without_the_gauge_404(quiet):
    message = await not_found(quiet.by_name(resources.PODS, QUEUE_DEPTH, "w0"))
    assert message == f"pod {NS}/w0 reported no inference_queue_depth"


@pytest.mark.parametrize(
    ("name", "metric", "expected"),
    [
        ("model", QUEUE_DEPTH, "deployment inference/model has 3 pods tracked, none with"),
        ("model", P99, "deployment inference/model has 3 pods tracked, none with"),
        ("web", QUEUE_DEPTH, "deployment inference/web has 2 pods tracked, none with"),
        ("ghost", QUEUE_DEPTH, "deployment inference/ghost has 0 pods tracked, none with"),
    ],
)
async def test_deployment_404_counts_its_pods(quiet, name, metric, expected):
    message = await not_found(quiet.by_name(resources.DEPLOYMENTS, metric, name))
    assert message.startswith(expected)
    assert f"{metric} pushed within the max age of 10s" in message


async def test_deployments_by_selector_404_counts_pods_and_fresh_ones(quiet):
    message = await not_found(quiet.by_selector(resources.DEPLOYMENTS, QUEUE_DEPTH))
    assert message == (
        "selector '(everything)' matched 2 deployments.apps with 5 pods tracked;"
        " 2 pushed within the max age of 10s, none with inference_queue_depth"
    )
    quiet.clock.now = 1100.0
    message = await not_found(quiet.by_selector(resources.DEPLOYMENTS, CONCURRENCY))
    assert message == (
        "selector '(everything)' matched 2 deployments.apps with 5 pods tracked;"
        " 0 pushed within the max age of 10s"
    )


async def test_deployments_and_namespaces_have_no_labels_to_select_on(mixed):
    for resource in (resources.DEPLOYMENTS, resources.NAMESPACES):
        message = await not_found(
            mixed.by_selector(resource, QUEUE_DEPTH, "app=model", namespace=NS)
        )
        assert f"'app=model' matched 0 {resource.group_resource}" in message


UNKNOWN_METRIC_CALLS = [
    pytest.param(lambda c: c.by_name(resources.PODS, "inference_cpu", "fast"), id="pod"),
    pytest.param(lambda c: c.by_name(resources.DEPLOYMENTS, "inference_cpu", "model"), id="deploy"),
    pytest.param(lambda c: c.by_name(resources.NAMESPACES, "inference_cpu", NS), id="namespace"),
    pytest.param(lambda c: c.by_selector(resources.PODS, "inference_cpu"), id="pods"),
    pytest.param(lambda c: c.by_selector(resources.DEPLOYMENTS, "inference_cpu"), id="deploys"),
    pytest.param(lambda c: c.external("inference_cpu"), id="external"),
]


@pytest.mark.parametrize("call", UNKNOWN_METRIC_CALLS)
async def test_unknown_metric_404_lists_the_valid_metrics(mixed, call):
    message = await not_found(call(mixed))
    assert "could not find the" in message
    assert "inference_cpu" in message
    assert ", ".join(m.name for m in POD_METRICS) in message


async def test_the_required_replicas_of_a_pod_or_namespace_404_as_a_workload_s(mixed):
    for call in (
        mixed.by_name(resources.PODS, catalog.REQUIRED_REPLICAS, "fast"),
        mixed.by_selector(resources.PODS, catalog.REQUIRED_REPLICAS),
        mixed.by_name(resources.NAMESPACES, catalog.REQUIRED_REPLICAS, NS),
    ):
        message = await not_found(call)
        assert "a workload's replica count, served for deployments.apps and services" in message


@pytest.mark.parametrize("metric", [QUEUE_DEPTH, P99, "inference_cpu"])
async def test_services_404_says_why(mixed, metric):
    for call in (
        mixed.by_name(resources.SERVICES, metric, "model"),
        mixed.by_selector(resources.SERVICES, metric),
    ):
        message = await not_found(call)
        assert "services need the cluster view (in-cluster mode)" in message
        assert "pods, deployments.apps or namespaces" in message


async def test_unserved_resource_404_lists_the_served_ones(mixed):
    nodes = CustomMetricInfo("nodes", False, QUEUE_DEPTH)
    message = await not_found(mixed.provider.get_metric_by_name(nodes, None, "n", EVERYTHING))
    assert "for nodes; metrics are served for deployments.apps, namespaces, pods" in message


def test_list_all_metrics_covers_every_resource_and_metric(mixed):
    listed = mixed.provider.list_all_metrics()
    assert len(listed) == 3 * len(catalog.NAMES) - 2  # the required replicas: deployments only
    assert {i.group_resource for i in listed if i.metric == catalog.REQUIRED_REPLICAS} == {
        "deployments.apps"
    }
    assert {(i.group_resource, i.namespaced) for i in listed} == {
        ("pods", True),
        ("deployments.apps", True),
        ("namespaces", False),
    }
    assert {i.metric for i in listed} == set(catalog.NAMES)
    assert tuple(mixed.provider.list_all_external_metrics()) == catalog.NAMES


# --- external metrics -----------------------------------------------------------------------


async def test_external_one_series_per_deployment(mixed):
    mixed.push("stateful", 999.0, owner=Owner("StatefulSet", "db"), gauges={QUEUE_DEPTH: 3.0})
    mixed.push("far", 999.0, namespace="other-ns", gauges={QUEUE_DEPTH: 9.0})
    series = await mixed.external(QUEUE_DEPTH)
    assert [(s.labels, s.value) for s in series] == [
        ({"deployment": "model"}, 8.5),
        ({"deployment": "other"}, 100.0),
    ]
    for s in series:
        assert (s.metric, s.timestamp, s.window_seconds) == (QUEUE_DEPTH, 999.5, None)


async def test_external_quantile_is_pooled_per_deployment(mixed):
    [model, other] = await mixed.external(P99)
    union = mixed.samples(*MODEL_PODS, since=0.0)
    assert model.labels == {"deployment": "model"}
    assert relative_error(model.value, float(np.quantile(union, 0.99))) <= TOLERANCE
    other_exact = float(np.quantile(mixed.samples("other-0", since=0.0), 0.99))
    assert relative_error(other.value, other_exact) <= TOLERANCE
    assert model.window_seconds == other.window_seconds == 30


@pytest.mark.parametrize(
    ("selector", "deployments"),
    [
        ("", ["model", "other"]),
        ("deployment", ["model", "other"]),
        ("deployment=model", ["model"]),
        ("deployment==other", ["other"]),
        ("deployment!=model", ["other"]),
        ("deployment in (model,other,ghost)", ["model", "other"]),
        ("deployment notin (model)", ["other"]),
    ],
)
async def test_external_selector_picks_series(mixed, selector, deployments):
    series = await mixed.external(QUEUE_DEPTH, selector)
    assert [s.labels["deployment"] for s in series] == deployments


@pytest.mark.parametrize(
    ("selector", "matched"),
    [("deployment=ghost", 0), ("!deployment", 0), ("app=model", 0), ("deployment=model", 1)],
)
async def test_external_404_says_how_many_series_matched(mixed, selector, matched):
    mixed.clock.now = 1100.0
    message = await not_found(mixed.external(QUEUE_DEPTH, selector))
    assert f"external metric inference_queue_depth in namespace {NS}" in message
    assert f"{selector!r} matched {matched} series" in message
    assert "max age of 10s" in message


async def test_external_leaves_out_stale_pods_of_a_series(mixed):
    mixed.clock.now = 1009.0
    mixed.push("fast", 1008.0, gauges={QUEUE_DEPTH: 6.0})
    # slow and middle last pushed at 999.5, 9.5 s ago: still fresh; the newest report dates it
    [series] = await mixed.external(QUEUE_DEPTH, "deployment=model")
    assert (series.value, series.timestamp) == (6.0 + 7.0 + 0.5, 1008.0)
    deployment = await mixed.by_name(resources.DEPLOYMENTS, QUEUE_DEPTH, "model")
    assert (deployment.value, deployment.timestamp) == (6.0 + 7.0 + 0.5, 1008.0)
    namespace = await mixed.by_name(resources.NAMESPACES, P99, NS)
    assert namespace.timestamp == 1008.0
    mixed.clock.now = 1010.0
    [series] = await mixed.external(QUEUE_DEPTH, "deployment=model")
    assert (series.value, series.timestamp) == (6.0, 1008.0)


# --- metric label selectors -----------------------------------------------------------------


async def test_metric_label_selector_filters_pods(mixed):
    values = await mixed.by_selector(resources.PODS, QUEUE_DEPTH, "", "deployment=other")
    assert [v.described_object.name for v in values] == ["other-0"]
    assert values[0].metric_selector == selectors.parse("deployment=other")
    values = await mixed.by_selector(resources.PODS, QUEUE_DEPTH, "", "deployment=model")
    assert sorted(v.described_object.name for v in values) == sorted(MODEL_PODS)
    everyone = await mixed.by_selector(resources.PODS, QUEUE_DEPTH)
    assert len(everyone) == 5


async def test_metric_label_selector_filters_aggregates(mixed):
    namespace = await mixed.by_name(
        resources.NAMESPACES, QUEUE_DEPTH, NS, selectors.parse("deployment=model")
    )
    assert namespace.value == 8.5
    assert namespace.metric_selector == selectors.parse("deployment=model")
    # the owner-less pod has no series labels: "!deployment" picks only it
    lone = await mixed.by_name(
        resources.NAMESPACES, QUEUE_DEPTH, NS, selectors.parse("!deployment")
    )
    assert lone.value == 1000.0
    listed = await mixed.by_selector(resources.DEPLOYMENTS, QUEUE_DEPTH, "", "deployment=other")
    assert [(v.described_object.name, v.value) for v in listed] == [("other", 100.0)]


async def test_metric_label_selector_that_excludes_everything_404s(mixed):
    selector = selectors.parse("deployment=model")
    message = await not_found(mixed.by_name(resources.DEPLOYMENTS, QUEUE_DEPTH, "other", selector))
    assert message.startswith("deployment inference/other has 1 pods tracked")
    assert message.endswith("matching 'deployment=model'")
    message = await not_found(mixed.by_name(resources.PODS, QUEUE_DEPTH, "loner", selector))
    assert (
        message == f"pod {NS}/loner reported no inference_queue_depth series matching"
        " 'deployment=model'"
    )
    message = await not_found(
        mixed.by_selector(resources.DEPLOYMENTS, QUEUE_DEPTH, "", "deployment=ghost")
    )
    assert message == (
        "selector '(everything)' matched 2 deployments.apps with 4 pods tracked;"
        " 4 pushed within the max age of 10s, none with inference_queue_depth"
        " (metric label selector 'deployment=ghost')"
    )


# -- remembered pod selections: every change of who is selected shows in the next answer ------


def _names(values) -> list[str]:
    return sorted(v.described_object.name for v in values)


async def test_a_remembered_selection_follows_labels_new_pods_and_forgotten_ones():
    cluster = Cluster()
    cluster.push("a", 1000.0, labels={"app": "model"})
    cluster.push("b", 1000.0, labels={"app": "model"})
    cluster.push("c", 1000.0, labels={"app": "other"})
    assert _names(await cluster.by_selector(resources.PODS, QUEUE_DEPTH, "app=model")) == [
        "a",
        "b",
    ]
    cluster.push("b", 1000.5, labels={"app": "other"})  # relabelled
    cluster.push("c", 1000.5, labels={"app": "model"})
    assert _names(await cluster.by_selector(resources.PODS, QUEUE_DEPTH, "app=model")) == [
        "a",
        "c",
    ]
    cluster.push("d", 1000.6, labels={"app": "model"})  # a new pod
    assert _names(await cluster.by_selector(resources.PODS, QUEUE_DEPTH, "app=model")) == [
        "a",
        "c",
        "d",
    ]
    assert cluster.store.forget(PodRef(NS, "a"))
    assert _names(await cluster.by_selector(resources.PODS, QUEUE_DEPTH, "app=model")) == [
        "c",
        "d",
    ]
    cluster.push("c", 1200.0, labels={"app": "model"})
    assert cluster.store.sweep(1200.0) == 2  # b and d, silent too long
    cluster.clock.now = 1200.0
    assert _names(await cluster.by_selector(resources.PODS, QUEUE_DEPTH, "app=model")) == ["c"]


async def test_a_new_incarnation_replaces_the_remembered_record():
    cluster = Cluster()
    cluster.push("a", 1000.0, gauges={QUEUE_DEPTH: 1.0})
    assert [v.value for v in await cluster.by_selector(resources.PODS, QUEUE_DEPTH)] == [1.0]
    pod = PodRef(NS, "a")
    cluster.store.apply(
        Report(
            pod=pod, uid="a-second-uid", seq=1, labels={"app": "model"}, gauges={QUEUE_DEPTH: 7.0}
        ),
        now=1000.5,
    )
    assert [v.value for v in await cluster.by_selector(resources.PODS, QUEUE_DEPTH)] == [7.0]


async def test_pushes_that_change_no_identity_keep_the_selection():
    cluster = Cluster()
    cluster.push("a", 1000.0)
    await cluster.by_selector(resources.PODS, QUEUE_DEPTH, "app=model")
    kept = cluster.store._selections.copy()
    cluster.push("a", 1000.5, gauges={QUEUE_DEPTH: 4.0})
    assert cluster.store._selections == kept, "a push that changed no identity dropped it"
    values = await cluster.by_selector(resources.PODS, QUEUE_DEPTH, "app=model")
    assert [v.value for v in values] == [4.0], "the remembered selection served stale values"
