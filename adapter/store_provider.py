"""``StoreProvider``: the metric catalog computed from pushed data in ``adapter.store``.

Pods are described by their own records; a ``deployments.apps`` object by the pods whose pushed
owner is that Deployment; a namespace by all its pods. Aggregates sum gauges and rates and merge
latency sketches. Pods silent for longer than the max age are left out; an answer with nothing
left is a 404 that says how many objects matched and how many had fresh data.

Series labels (what ``metricLabelSelector`` and external ``labelSelector`` pick from) are
``{"deployment": <owner>}`` for pods owned by a Deployment and ``{}`` otherwise. For
``inference_required_replicas`` the selector also carries the SLO (``adapter.slo``), which is
taken out before it picks series; its value is ``adapter.required_replicas.size`` over the
pods' rate histories (``--rate-window``), slots and service-time windows, and a pod field
nobody sent is a 404 that names it.

With a cluster view (``adapter.cluster.PodView``, cluster mode) the pods that exist decide:
selectors match the pods' real labels, a ``deployments.apps`` or ``services`` object is the pods
its selector picks, the owning Deployment comes from the pod's ReplicaSet, and data of a pod the
cluster does not have (or of an older incarnation) is never served.
"""

from __future__ import annotations

import math
import statistics
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from adapter import (
    catalog,
    cluster,
    errors,
    queueing,
    required_replicas,
    resources,
    selectors,
    sketch,
)
from adapter.provider import (
    CustomMetricInfo,
    ExternalMetricValue,
    MetricValue,
    ObjectReference,
    PodValues,
)
from adapter.report import LATENCY, SERVICE_TIME, WORKER_SLOTS
from adapter.resources import PodRef
from adapter.store import PodRecord, Store

SERVED_RESOURCES = (resources.PODS, resources.DEPLOYMENTS, resources.NAMESPACES)
SERIES_LABEL = "deployment"


def seconds_text(seconds: float) -> str:
    """A duration for a message: ``12.3s``."""
    return f"{seconds:.3g}s"


def owning_deployment(record: PodRecord) -> str | None:
    """The Deployment a pod's pushes name as its owner, if any."""
    owner = record.owner
    return owner.name if owner is not None and owner.kind == "Deployment" else None


def series_labels(record: PodRecord) -> dict[str, str]:
    """The labels of the metric series a pod contributes to."""
    deployment = owning_deployment(record)
    return {SERIES_LABEL: deployment} if deployment is not None else {}


@dataclass(frozen=True)
class _Aggregate:
    value: float
    timestamp: float


class Uncomputable(Exception):
    """The pods lack what ``inference_required_replicas`` needs; the message says what."""


class StoreProvider:
    """Custom and external metrics provider over a ``Store``."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        view: cluster.PodView | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.view = view
        config = store.config
        self._window = round(config.window_seconds)
        self._max_age_text = seconds_text(config.max_age_seconds)
        self._served = SERVED_RESOURCES if view is None else (*SERVED_RESOURCES, resources.SERVICES)
        self._metrics = [
            CustomMetricInfo(r.group_resource, r.namespaced, m)
            for r in self._served
            for m in catalog.names_for(r.group_resource)
        ]

    # -- the seam --------------------------------------------------------------------------

    def list_all_metrics(self) -> Sequence[CustomMetricInfo]:
        return self._metrics

    def list_all_external_metrics(self) -> Sequence[str]:
        return catalog.NAMES

    async def get_metric_by_name(
        self,
        info: CustomMetricInfo,
        namespace: str | None,
        name: str,
        metric_selector: selectors.Selector,
    ) -> MetricValue:
        metric = self._metric(info, metric_selector)
        now = self.clock()
        if self.view is not None:
            return self._cluster_value(
                self.view, metric, info, namespace, name, metric_selector, now
            )
        if info.group_resource == resources.PODS.group_resource:
            assert namespace is not None
            return self._pod_value(
                metric,
                namespace,
                name,
                self.store.get(PodRef(namespace, name)),
                metric_selector,
                now,
            )
        if info.group_resource == resources.DEPLOYMENTS.group_resource:
            assert namespace is not None
            members = self._deployment_pods(namespace, name)
            what = f"deployment {namespace}/{name}"
            reference = ObjectReference("Deployment", "apps/v1", name, namespace)
        else:
            # namespaces: by name (root-scoped) or the namespace form, where name == namespace
            members = list(self.store.pods(name))
            what = f"namespace {name}"
            reference = ObjectReference("Namespace", "v1", name)
        return self._object_value(metric, members, what, reference, metric_selector, now)

    def _pod_value(
        self,
        metric: catalog.Metric,
        namespace: str,
        name: str,
        record: PodRecord | None,
        metric_selector: selectors.Selector,
        now: float,
    ) -> MetricValue:
        if record is None:
            raise errors.not_found(f"pod {namespace}/{name} has never pushed metrics")
        if not self.store.is_fresh(record, now):
            raise errors.not_found(
                f"pod {namespace}/{name} last pushed {seconds_text(now - record.last_seen)}"
                f" ago, more than the max age of {self._max_age_text}"
            )
        values = self._per_pod(metric, [record], metric_selector, now)
        if not values:
            raise errors.not_found(
                self._no_series_message(
                    metric, f"pod {namespace}/{name}", metric_selector, [record]
                )
            )
        return values[0]

    async def get_metric_by_selector(
        self,
        info: CustomMetricInfo,
        namespace: str | None,
        selector: selectors.Selector,
        metric_selector: selectors.Selector,
    ) -> Sequence[MetricValue]:
        metric = self._metric(info, metric_selector)
        now = self.clock()
        if self.view is not None:
            return self._cluster_values(
                self.view, metric, info, namespace, selector, metric_selector, now
            )
        if info.group_resource == resources.PODS.group_resource:
            matched, tracked = self._matching_pods(namespace, selector)
            return self._selected_pods(
                metric,
                self.store.fresh(matched, now),
                f"matched {len(matched)} of {tracked} pods tracked in namespace {namespace}",
                selector,
                metric_selector,
                now,
            )
        # Deployments and namespaces carry no labels the adapter knows of in standalone mode,
        # so a selector picks all of them or none.
        groups = self._groups(info.group_resource, namespace) if selector.matches({}) else {}
        return self._group_values(info, metric, groups, selector, metric_selector, now)

    def _matching_pods(
        self, namespace: str | None, selector: selectors.Selector
    ) -> tuple[Sequence[PodRecord], int]:
        """The tracked pods of ``namespace`` that ``selector`` matches, and how many are tracked
        there (remembered by the store, ``Store.selection``)."""
        return self.store.selection(
            ("labels", namespace, selector), namespace, lambda r: selector.matches(r.labels)
        )

    def _deployment_pods(self, namespace: str, name: str) -> Sequence[PodRecord]:
        """The tracked pods of ``namespace`` whose pushed owner is Deployment ``name``."""
        return self.store.selection(
            ("deployment", namespace, name), namespace, lambda r: owning_deployment(r) == name
        )[0]

    def _group_values(
        self,
        info: CustomMetricInfo,
        metric: catalog.Metric,
        groups: dict[ObjectReference, list[PodRecord]],
        selector: selectors.Selector,
        metric_selector: selectors.Selector,
        now: float,
    ) -> list[MetricValue]:
        values = []
        series = metric.series_selector(metric_selector)
        reasons = []
        for reference, members in groups.items():
            try:
                aggregate = self._aggregate(metric, self._fresh(members, series, now), now)
            except Uncomputable as error:
                reasons.append(f"{reference.kind} {reference.name}: {error}")
                continue
            if aggregate is not None:
                values.append(
                    self._custom_value(metric, reference, aggregate, metric_selector, now)
                )
        if not values:
            tracked = [r for members in groups.values() for r in members]
            fresh = self.store.fresh(tracked, now)
            raise errors.not_found(
                f"selector {str(selector) or '(everything)'!r} matched {len(groups)}"
                f" {info.group_resource} with {len(tracked)} pods tracked; {len(fresh)} pushed"
                f" within the max age of {self._max_age_text}"
                + ("" if not fresh else f", none with {metric.name}" + _why(metric, fresh))
                + (
                    ""
                    if metric_selector.is_empty()
                    else f" (metric label selector {str(metric_selector)!r})"
                )
                + "".join(f"; {reason}" for reason in reasons[:3])
            )
        return values

    async def get_external_metric(
        self, namespace: str, metric: str, metric_selector: selectors.Selector
    ) -> list[ExternalMetricValue]:
        entry = catalog.resolve_external(metric).asked(metric_selector)
        picks = entry.series_selector(metric_selector)
        now = self.clock()
        series: dict[str, list[PodRecord]] = {}
        for record in self._tracked(namespace):
            labels = self._series_labels(record)
            if labels and picks.matches(labels):
                series.setdefault(labels[SERIES_LABEL], []).append(record)
        values = []
        reasons = []
        for deployment, members in sorted(series.items()):
            try:
                fresh_members = self._fresh(members, selectors.EVERYTHING, now)
                aggregate = self._aggregate(entry, fresh_members, now)
            except Uncomputable as error:
                reasons.append(f"series deployment={deployment}: {error}")
                continue
            if aggregate is not None:
                values.append(
                    ExternalMetricValue(
                        metric,
                        aggregate.value,
                        aggregate.timestamp,
                        {SERIES_LABEL: deployment},
                        self._window_seconds(entry, now),
                    )
                )
        if not values:
            tracked = [r for members in series.values() for r in members]
            fresh = self.store.fresh(tracked, now)
            raise errors.not_found(
                f"external metric {metric} in namespace {namespace}: selector"
                f" {str(metric_selector) or '(everything)'!r} matched {len(series)} series"
                f" of {len(tracked)} pods; {len(fresh)} pushed within the max age of"
                f" {self._max_age_text}"
                + ("" if not fresh else f", none with {metric}" + _why(entry, fresh))
                + "".join(f"; {reason}" for reason in reasons[:3])
            )
        return values

    # -- cluster mode: the view decides which pods exist and what they belong to ---------------

    def _series_labels(self, record: PodRecord) -> dict[str, str]:
        if self.view is None:
            return series_labels(record)
        pod = self.view.pod(record.pod.namespace, record.pod.name)
        deployment = self.view.deployment_of(pod) if pod is not None else None
        return {SERIES_LABEL: deployment} if deployment else {}

    def _record(self, pod: cluster.ClusterPod) -> PodRecord | None:
        """The data of this incarnation of ``pod``, if it pushed any."""
        record = self.store.get(PodRef(pod.namespace, pod.name))
        if record is None or record.uid != pod.uid:
            return None
        return record

    def _records(self, pods: Iterable[cluster.ClusterPod]) -> list[PodRecord]:
        return [r for r in map(self._record, pods) if r is not None]

    def _tracked(self, namespace: str | None) -> list[PodRecord]:
        """The records that count: every one standalone, those of existing pods in a cluster."""
        if self.view is None:
            return list(self.store.pods(namespace))
        return self._records(self.view.pods(namespace))

    def _cluster_value(
        self,
        view: cluster.PodView,
        metric: catalog.Metric,
        info: CustomMetricInfo,
        namespace: str | None,
        name: str,
        metric_selector: selectors.Selector,
        now: float,
    ) -> MetricValue:
        group_resource = info.group_resource
        if group_resource == resources.NAMESPACES.group_resource:
            members = self._tracked(name)
            reference = ObjectReference("Namespace", "v1", name)
            return self._object_value(
                metric, members, f"namespace {name}", reference, metric_selector, now
            )
        assert namespace is not None
        if group_resource == resources.PODS.group_resource:
            pod = view.pod(namespace, name)
            if pod is None:
                raise errors.not_found(f"pod {namespace}/{name} does not exist in the cluster")
            return self._pod_value(metric, namespace, name, self._record(pod), metric_selector, now)
        resource = resources.lookup(group_resource)
        assert resource is not None
        singular = resource.kind.lower()
        workload = view.workload(group_resource, namespace, name)
        if workload is None:
            raise errors.not_found(f"{singular} {namespace}/{name} does not exist in the cluster")
        members = self._records(p for p in view.pods(namespace) if workload.selects(p))
        reference = ObjectReference(resource.kind, resource.api_version, name, namespace)
        return self._object_value(
            metric, members, f"{singular} {namespace}/{name}", reference, metric_selector, now
        )

    def _cluster_values(
        self,
        view: cluster.PodView,
        metric: catalog.Metric,
        info: CustomMetricInfo,
        namespace: str | None,
        selector: selectors.Selector,
        metric_selector: selectors.Selector,
        now: float,
    ) -> Sequence[MetricValue]:
        group_resource = info.group_resource
        if group_resource == resources.PODS.group_resource:
            pods = list(view.pods(namespace))
            matched = [p for p in pods if selector.matches(p.labels)]
            return self._selected_pods(
                metric,
                self.store.fresh(self._records(matched), now),
                f"matched {len(matched)} of {len(pods)} pods in namespace {namespace}",
                selector,
                metric_selector,
                now,
            )
        groups: dict[ObjectReference, list[PodRecord]] = {}
        if group_resource == resources.NAMESPACES.group_resource:
            if selector.matches({}):  # no namespace informer: namespaces carry no known labels
                for record in self._tracked(None):
                    reference = ObjectReference("Namespace", "v1", record.pod.namespace)
                    groups.setdefault(reference, []).append(record)
        else:
            resource = resources.lookup(group_resource)
            assert resource is not None
            for workload in view.workloads(group_resource, namespace):
                if not selector.matches(workload.labels):
                    continue
                reference = ObjectReference(
                    resource.kind, resource.api_version, workload.name, workload.namespace
                )
                groups[reference] = self._records(
                    p for p in view.pods(workload.namespace) if workload.selects(p)
                )
        return self._group_values(info, metric, groups, selector, metric_selector, now)

    # -- computing values ------------------------------------------------------------------

    def _metric(
        self, info: CustomMetricInfo, metric_selector: selectors.Selector
    ) -> catalog.Metric:
        served = [r.group_resource for r in self._served]
        return catalog.resolve(info.group_resource, info.metric, served).asked(metric_selector)

    def _no_series_message(
        self,
        metric: catalog.Metric,
        who: str,
        metric_selector: selectors.Selector,
        records: Sequence[PodRecord],
    ) -> str:
        if metric_selector.is_empty():
            return f"{who} reported no {metric.name}" + _why(metric, records)
        return f"{who} reported no {metric.name} series matching {str(metric_selector)!r}"

    def _fresh(
        self, records: Sequence[PodRecord], metric_selector: selectors.Selector, now: float
    ) -> Sequence[PodRecord]:
        return self._in_series(self.store.fresh(records, now), metric_selector)

    def _in_series(
        self, records: Sequence[PodRecord], metric_selector: selectors.Selector
    ) -> Sequence[PodRecord]:
        """Those of ``records`` whose series labels ``metric_selector`` matches."""
        if metric_selector.is_empty():
            return records
        return [r for r in records if metric_selector.matches(self._series_labels(r))]

    def _groups(
        self, group_resource: str, namespace: str | None
    ) -> dict[ObjectReference, list[PodRecord]]:
        groups: dict[ObjectReference, list[PodRecord]] = {}
        if group_resource == resources.NAMESPACES.group_resource:
            for name in self.store.namespaces():
                groups[ObjectReference("Namespace", "v1", name)] = list(self.store.pods(name))
            return groups
        for record in self.store.pods(namespace):
            deployment = owning_deployment(record)
            if deployment is not None:
                reference = ObjectReference(
                    "Deployment", "apps/v1", deployment, record.pod.namespace
                )
                groups.setdefault(reference, []).append(record)
        return groups

    def _refresh_windows(
        self, metric: catalog.Metric, records: Sequence[PodRecord], now: float
    ) -> None:
        """Bring the windows of ``records`` up to ``now`` (with one slice of slack) when
        ``metric`` reads them; gauges do not."""
        if metric.windowed:
            self.store.refresh_windows(records, now, slack_slices=1)

    def _window_seconds(self, metric: catalog.Metric, now: float) -> int | None:
        """The span a value of ``metric`` covers (``windowSeconds``, ``window``): None for a
        gauge; the window, or, on a replica that has been receiving for less than the window,
        the whole seconds it has (at least one), never a window it did not see."""
        if not metric.windowed:
            return None
        window = self._window
        if metric.kind is catalog.Kind.REQUIRED_REPLICAS:
            window = round(self.store.config.rate_window_seconds)  # what the rate covers
        return max(1, min(window, math.floor(self.store.covered_seconds(now))))

    def _rate(self, record: PodRecord, now: float) -> float:
        config = self.store.config
        span = record.covered_seconds(now, config.window_seconds, config.slice_seconds)
        return record.completed_requests() / span

    def _aggregate(
        self, metric: catalog.Metric, records: Sequence[PodRecord], now: float
    ) -> _Aggregate | None:
        """The object-level value over ``records`` (already fresh), or None without data.
        Raises ``Uncomputable`` when the pods lack what the required replicas need."""
        if metric.kind is catalog.Kind.REQUIRED_REPLICAS:
            if not records:
                return None
            self._refresh_windows(metric, records, now)
            sizing = self._sizing(metric, records, now)
            return _Aggregate(sizing.estimate.replicas, max(r.last_seen for r in records))
        records = self._with_signal(metric, records)
        if not records:
            return None
        self._refresh_windows(metric, records, now)
        if metric.kind is catalog.Kind.GAUGE:
            values = [r.gauges[metric.signal.value] for r in records]
            value = _AGGREGATES[metric.aggregate](values)
        elif metric.kind is catalog.Kind.RATE:
            value = sum(self._rate(r, now) for r in records)
        elif metric.kind is catalog.Kind.MEAN:
            value = _pooled_mean(records)
        else:
            bands, zero_counts, scales = _sketches(metric.signal, records)
            pooled = sketch.LatencySketch.from_bands(bands, zero_counts, scales)
            value = pooled.quantile(metric.quantile)
        return _Aggregate(value, max(r.last_seen for r in records))

    @staticmethod
    def _with_signal(metric: catalog.Metric, records: Sequence[PodRecord]) -> Sequence[PodRecord]:
        """Those of ``records`` that report what ``metric`` reads."""
        return [r for r in records if lacks(r, metric.signal) is None]

    def _object_value(
        self,
        metric: catalog.Metric,
        members: Sequence[PodRecord],
        what: str,
        reference: ObjectReference,
        metric_selector: selectors.Selector,
        now: float,
    ) -> MetricValue:
        series = metric.series_selector(metric_selector)
        fresh = self._fresh(members, series, now)
        try:
            aggregate = self._aggregate(metric, fresh, now)
        except Uncomputable as error:
            raise errors.not_found(f"{what}: {error}") from error
        if aggregate is None:
            raise errors.not_found(
                f"{what} has {len(members)} pods tracked, none with {metric.name} pushed within"
                f" the max age of {self._max_age_text}"
                + ("" if series.is_empty() else f" matching {str(series)!r}")
                + _why(metric, fresh)
            )
        return self._custom_value(metric, reference, aggregate, metric_selector, now)

    def _sizing(
        self, metric: catalog.Metric, records: Sequence[PodRecord], now: float
    ) -> required_replicas.Sizing:
        """``required_replicas.size`` over fresh ``records`` (windows brought up to ``now``)."""
        assert metric.slo is not None
        config = self.store.config
        window, slice_seconds = config.rate_window_seconds, config.slice_seconds
        recent = max(slice_seconds, required_replicas.RECENT_SHARE * window)
        pods = [
            required_replicas.PodState(
                r.history.change(now, window, r.first_seen, slice_seconds),
                r.history.change(now, recent, r.first_seen, slice_seconds),
                r.gauges.get(WORKER_SLOTS),
                r.history.change(now, config.window_seconds, r.first_seen, slice_seconds),
            )
            for r in records
        ]
        try:
            return required_replicas.size(
                pods, _service_time(records), metric.slo, window, config.window_seconds
            )
        except queueing.MissingInput as error:
            why = _why(metric, records) if error.missing == SERVICE_TIME else ""
            raise Uncomputable(
                f"cannot compute {metric.name} from its {len(records)} fresh pods: {error}{why}"
                f" (the push contract's {error.missing}, docs/push-protocol.md)"
            ) from error
        except ValueError as error:
            raise Uncomputable(f"cannot compute {metric.name}: {error}") from error

    def _custom_value(
        self,
        metric: catalog.Metric,
        reference: ObjectReference,
        aggregate: _Aggregate,
        metric_selector: selectors.Selector,
        now: float,
    ) -> MetricValue:
        return MetricValue(
            reference,
            metric.name,
            aggregate.value,
            aggregate.timestamp,
            self._window_seconds(metric, now),
            metric_selector,
        )

    def _selected_pods(
        self,
        metric: catalog.Metric,
        fresh: Sequence[PodRecord],
        matched: str,
        selector: selectors.Selector,
        metric_selector: selectors.Selector,
        now: float,
    ) -> PodValues:
        """The values of the pods a selector picked (``fresh`` of them), or the 404 that says
        what it ``matched`` and why nothing is left."""
        values = self._per_pod(metric, fresh, metric_selector, now)
        if values:
            return values
        raise errors.not_found(
            f"selector {str(selector) or '(everything)'!r} {matched}; {len(fresh)} pushed within"
            f" the max age of {self._max_age_text}"
            + (
                ""
                if not fresh
                else f", {self._no_series_message(metric, 'but they', metric_selector, fresh)}"
            )
        )

    def _per_pod(
        self,
        metric: catalog.Metric,
        records: Sequence[PodRecord],
        metric_selector: selectors.Selector,
        now: float,
    ) -> PodValues:
        """One value per pod, for the pods (already fresh) that have ``metric``."""
        records = self._with_signal(metric, self._in_series(records, metric_selector))
        self._refresh_windows(metric, records, now)
        numbers: Sequence[float] | NDArray[np.float64]
        if metric.kind is catalog.Kind.GAUGE:
            numbers = [r.gauges[metric.signal.value] for r in records]
        elif metric.kind is catalog.Kind.RATE:
            numbers = [self._rate(r, now) for r in records]
        elif metric.kind is catalog.Kind.MEAN:
            numbers = [_pooled_mean([r]) for r in records]
        else:
            bands, zero_counts, _ = _sketches(metric.signal, records)  # a quantile of one pod
            numbers = sketch.quantile_per_band(bands, zero_counts, metric.quantile)
        return PodValues(
            metric.name,
            [r.pod for r in records],
            numbers,
            [r.last_seen for r in records],
            self._window_seconds(metric, now),
            metric_selector,
        )


_AGGREGATES: dict[catalog.Aggregate, Callable[[Sequence[float]], float]] = {
    catalog.Aggregate.SUM: sum,
    catalog.Aggregate.MEAN: statistics.fmean,
    catalog.Aggregate.MAX: max,
}
"""How the pods' gauge values make an object's value (a fraction is never summed)."""


def lacks(record: PodRecord, signal: catalog.Signal) -> str | None:
    """Why the pod cannot give ``signal`` now ('' when there is no more to say than that), or
    None when it can.

    A relayed pod's latest report says what its server lacks (``source.missing``). Otherwise
    a gauge is there if the latest report carried it; the latency, the requests and the mean
    always are (a report without them completed no request); another sketch (time to first
    token) is there if the latest report carried it, empty or not.
    """
    source = record.source
    if source is not None and signal.value in source.missing:
        return (
            f"its reports come from the relay's {source.preset} preset, which says:"
            f" {source.missing[signal.value]}"
        )
    if signal is catalog.Signal.LATENCY:  # first: the common case, and enum hashing is slow
        return None
    if signal in catalog.GAUGE_SIGNALS:
        return None if signal.value in record.gauges else ""  # "reported no" says it all
    if signal in catalog.SKETCH_SIGNALS and signal.value not in record.sketch_names:
        return f"its reports carry no {signal.value} sketch"
    return None


def _why(metric: catalog.Metric, records: Sequence[PodRecord]) -> str:
    """Why ``records`` (fresh pods) have no ``metric``: their reasons, at most two, or ''."""
    reasons = list(dict.fromkeys(r for r in (lacks(x, metric.signal) for x in records) if r))
    if not reasons:
        return ""
    return ": " + "; ".join(reasons[:2]) + ("; ..." if len(reasons) > 2 else "")


_NO_BAND = (0, array("q"))
"""The band of a pod that reports a sketch but has had nothing in it yet."""


def _sketches(
    signal: catalog.Signal, records: Sequence[PodRecord]
) -> tuple[list[tuple[int, sketch.Int64Buffer]], list[int], list[int]]:
    """The window bands, zero counts and counts per request of each record's ``signal``
    sketch (empty for a record that has none yet)."""
    name = signal.value  # once: an enum's value is a Python-level property
    windows = [r.windows.get(name) for r in records]  # no view per pod: a query reads 1,000s
    return (
        [_NO_BAND if w is None else w.band for w in windows],
        [0 if w is None else w.zero_count for w in windows],
        [1 if w is None else w.counts_per_request for w in windows],
    )


def _pooled_mean(records: Sequence[PodRecord]) -> float:
    """The mean latency of the requests the records' windows hold, pooled: each pod's own sum
    and count where it sends them, else from its latency window; 0 for none."""
    total = count = 0.0
    views = []
    for record in records:
        sums = record.latency_sums()
        if sums is not None:
            total, count = total + sums[0], count + sums[1]
        elif (view := record.sketch_window(LATENCY)) is not None and view.total:
            views.append(view)
    if views:
        band_sums = sketch.sum_per_band([v.band for v in views])
        total += float(np.sum(band_sums / np.array([v.counts_per_request for v in views])))
        count += sum(v.requests for v in views)
    return total / count if count else 0.0


def _service_time(records: Sequence[PodRecord]) -> sketch.LatencySketch:
    """The service times the ``records`` hold in their windows, pooled into one sketch."""
    bands, zero_counts, scales = _sketches(catalog.Signal.SERVICE_TIME, records)
    return sketch.LatencySketch.from_bands(bands, zero_counts, scales)
