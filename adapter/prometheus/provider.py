"""``PrometheusProvider``: the metric catalog computed by PromQL from the servers' own metrics.

The second provider behind the seam of ``adapter.provider``: the API layer cannot tell it from
``StoreProvider``. Values come from instant queries (``adapter.prometheus.promql``) of the
series a ``Preset`` names (``adapter.prometheus.presets``); each value's timestamp is the newest
sample of the pods behind it, and a pod whose newest sample is older than the max age is left
out (judged by the engine's clock, against which the samples were stamped). Latency with no
request in the window (PromQL's NaN) is 0, as the push path serves it; no value at all (a rate
without two samples in the window: a window shorter than two scrape intervals, or a pod scraped
once) is no value, left out with a 404 that says why, never a 0 the HPA would act on. A metric
the preset's server does not export is a 404 that names the preset and what the server lacks.

Aggregates follow the catalog: gauges and rates are summed, quantiles read from the pooled
buckets, a mean from the pooled sums and counts, and a fraction (KV-cache utilization) is the
mean or the maximum of the pods' values, each pod's value the mean of its engines.

Which pods: standalone, a pod's labels are its series' labels (``labelmap``-ed), a
Deployment is the series label ``deployment``, and selectors become label matchers. With a
cluster view, the pods that exist decide, as in ``StoreProvider``: selectors, Deployments and
Services resolve against the informers' pods, and the queries name those pods, split into
parts of at most ``names_per_query`` names so that no query grows with the fleet (one regex
of 10,000 names is too long a URL for any engine); pooled latency then adds the parts'
buckets and reads the quantile here, with ``histogram_quantile``'s arithmetic.

Failures of the backend are 503s naming it and the cause; never a zero, never an empty 200.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from adapter import catalog, cluster, errors, resources, selectors
from adapter.prometheus import histogram, promql
from adapter.prometheus.engine import BackendError, PrometheusClient, Sample
from adapter.prometheus.presets import MODEL_SERVER
from adapter.prometheus.sources import Counter, Gauge, Histogram, Mean, Preset, Source
from adapter.provider import (
    CustomMetricInfo,
    ExternalMetricValue,
    MetricValue,
    ObjectReference,
    PodValues,
)
from adapter.report import PodRef
from adapter.store_provider import seconds_text

SERVED_RESOURCES = (resources.PODS, resources.DEPLOYMENTS, resources.NAMESPACES)
NAMES_PER_QUERY = 100
"""Pod names in one query's regex: about 4 KiB of URL for typical pod names."""

Group = tuple[str, ...]
"""The values of the labels an aggregate groups by (empty for one object)."""


@dataclass(frozen=True)
class _Aggregate:
    value: float
    timestamp: float


@dataclass(frozen=True)
class _Newest:
    """The newest sample of each group, and when the engine looked (its clock)."""

    samples: dict[Group, float]
    evaluated_at: float | None


@dataclass(frozen=True)
class _Aggregates:
    """The fresh groups' values, and the newest samples they were judged by."""

    values: dict[Group, _Aggregate]
    newest: _Newest


class PrometheusProvider:
    """Custom and external metrics provider over a Prometheus-compatible query API."""

    def __init__(
        self,
        client: PrometheusClient,
        queries: promql.Queries,
        source: Preset = MODEL_SERVER,
        view: cluster.PodView | None = None,
        names_per_query: int = NAMES_PER_QUERY,
    ) -> None:
        self.client = client
        self.queries = queries
        self.source = source
        self.view = view
        self.names_per_query = names_per_query
        self._labels = queries.labels
        self._window = round(queries.window_seconds)
        self._gauge_window = round(queries.gauge_window_seconds)
        self._max_age_text = seconds_text(queries.max_age_seconds)
        self._names = source.served()
        self._unserved = {**source.unserved(), **UNSERVED}
        served = SERVED_RESOURCES if view is None else (*SERVED_RESOURCES, resources.SERVICES)
        self._served = [r.group_resource for r in served]
        self._metrics = [
            CustomMetricInfo(r.group_resource, r.namespaced, m) for r in served for m in self._names
        ]

    # -- the seam --------------------------------------------------------------------------

    def list_all_metrics(self) -> Sequence[CustomMetricInfo]:
        return self._metrics

    def list_all_external_metrics(self) -> Sequence[str]:
        return self._names

    async def get_metric_by_name(
        self,
        info: CustomMetricInfo,
        namespace: str | None,
        name: str,
        metric_selector: selectors.Selector,
    ) -> MetricValue:
        metric = catalog.resolve(
            info.group_resource, info.metric, self._served, self._names, self._unserved
        )
        group_resource = info.group_resource
        if group_resource == resources.PODS.group_resource:
            assert namespace is not None
            what = f"pod {namespace}/{name}"
            if self.view is not None:
                pod = self.view.pod(namespace, name)
                if pod is None:
                    raise errors.not_found(f"{what} does not exist in the cluster")
                pods = self._in_series([pod], metric_selector)
                scopes = self._name_scopes(namespace, [p.name for p in pods])
            else:
                scopes = [self._scope(namespace, metric_selector, self._pod_is(name))]
            values = await self._per_pod(metric, scopes, what, metric_selector, one_pod=True)
            return values[0]
        if group_resource == resources.NAMESPACES.group_resource:
            what = f"namespace {name}"
            reference = ObjectReference("Namespace", "v1", name)
            if self.view is not None:
                pods = self._in_series(self.view.pods(name), metric_selector)
                scopes = self._name_scopes(name, [p.name for p in pods])
            else:
                scopes = [self._scope(name, metric_selector)]
        else:
            assert namespace is not None
            resource = resources.lookup(group_resource)
            assert resource is not None
            what = f"{resource.kind.lower()} {namespace}/{name}"
            reference = ObjectReference(resource.kind, resource.api_version, name, namespace)
            if self.view is not None:
                workload = self.view.workload(group_resource, namespace, name)
                if workload is None:
                    raise errors.not_found(f"{what} does not exist in the cluster")
                scopes = self._workload_scopes(workload, metric_selector)
            else:
                deployment = promql.equals(self._labels.deployment, name)
                scopes = [self._scope(namespace, metric_selector, deployment)]
        aggregates = await self._aggregates(metric, scopes)
        aggregate = aggregates.values.get(())
        if aggregate is None:
            raise errors.not_found(
                self._nothing_fresh(what, metric, aggregates.newest, metric_selector)
            )
        return self._custom_value(metric, reference, aggregate, metric_selector)

    async def get_metric_by_selector(
        self,
        info: CustomMetricInfo,
        namespace: str | None,
        selector: selectors.Selector,
        metric_selector: selectors.Selector,
    ) -> Sequence[MetricValue]:
        metric = catalog.resolve(
            info.group_resource, info.metric, self._served, self._names, self._unserved
        )
        group_resource = info.group_resource
        described = f"selector {str(selector) or '(everything)'!r}"
        if group_resource == resources.PODS.group_resource:
            where = f"in namespace {namespace}" if namespace else "in any namespace"
            if self.view is not None:
                matched = [p for p in self.view.pods(namespace) if selector.matches(p.labels)]
                pods = self._in_series(matched, metric_selector)
                scopes = [
                    scope
                    for space in sorted({p.namespace for p in pods})
                    for scope in self._name_scopes(
                        space, [p.name for p in pods if p.namespace == space]
                    )
                ]
                described += f" matched {len(matched)} pods {where}"
            else:
                scopes = [self._scope(namespace, metric_selector, *self._matchers(selector))]
                described += f" {where}"
            return await self._per_pod(metric, scopes, described, metric_selector)
        if self.view is not None:
            groups = self._cluster_groups(group_resource, namespace, selector, metric_selector)
            values = await self._group_values(metric, groups, metric_selector)
            what = f"{described} matched {len(groups)} {group_resource}"
        else:
            # Deployments and namespaces carry no labels the adapter knows of in standalone
            # mode, so a selector picks all of them or none (as StoreProvider).
            values = []
            if selector.matches({}):
                values = await self._standalone_groups(
                    metric, group_resource, namespace, metric_selector
                )
            what = f"{described} matched no {group_resource} with series"
        if not values:
            raise errors.not_found(
                f"{what}; none with {metric.name} sampled within the max age of"
                f" {self._max_age_text}" + self._selector_note(metric_selector)
            )
        return values

    async def get_external_metric(
        self, namespace: str, metric: str, metric_selector: selectors.Selector
    ) -> list[ExternalMetricValue]:
        entry = catalog.resolve_external(metric, self._names, self._unserved)
        deployment_label = self._labels.deployment
        found: dict[str, _Aggregate] = {}
        if self.view is not None:
            members: dict[str, list[cluster.ClusterPod]] = defaultdict(list)
            for pod in self.view.pods(namespace):
                deployment = self.view.deployment_of(pod)
                if deployment and metric_selector.matches({deployment_label: deployment}):
                    members[deployment].append(pod)
            results = await asyncio.gather(
                *(
                    self._aggregates(entry, self._name_scopes(namespace, [p.name for p in pods]))
                    for pods in members.values()
                )
            )
            for deployment, result in zip(members, results, strict=True):
                if () in result.values:
                    found[deployment] = result.values[()]
        else:
            scope = self._scope(
                namespace,
                metric_selector,
                promql.Matcher(deployment_label, "!=", ""),
            )
            result = await self._aggregates(entry, [scope], (deployment_label,))
            for group, aggregate in result.values.items():
                found[group[0]] = aggregate
        if not found:
            raise errors.not_found(
                f"external metric {metric} in namespace {namespace}: selector"
                f" {str(metric_selector) or '(everything)'!r} matched no Deployment's pods with"
                f" {metric} sampled within the max age of {self._max_age_text}"
            )
        window = self._window_of(entry)
        return [
            ExternalMetricValue(
                metric, a.value, a.timestamp, {deployment_label: deployment}, window
            )
            for deployment, a in sorted(found.items())
        ]

    # -- which pods ------------------------------------------------------------------------

    def _pod_is(self, name: str) -> promql.Matcher:
        return promql.equals(self._labels.pod, name)

    def _matchers(self, selector: selectors.Selector) -> promql.Scope:
        try:
            return promql.selector_matchers(selector)
        except promql.Untranslatable as error:
            raise errors.bad_request(str(error)) from None

    def _scope(
        self,
        namespace: str | None,
        metric_selector: selectors.Selector,
        *matchers: promql.Matcher,
    ) -> promql.Scope:
        """Standalone: the namespace, the given matchers and the metric label selector."""
        in_namespace = (
            () if namespace is None else (promql.equals(self._labels.namespace, namespace),)
        )
        return (*in_namespace, *matchers, *self._matchers(metric_selector))

    def _name_scopes(self, namespace: str, names: Sequence[str]) -> list[promql.Scope]:
        """Cluster mode: ``names`` in parts of at most ``names_per_query``."""
        unique = sorted(set(names))
        size = self.names_per_query
        return [
            (
                promql.equals(self._labels.namespace, namespace),
                promql.one_of(self._labels.pod, unique[start : start + size]),
            )
            for start in range(0, len(unique), size)
        ]

    def _in_series(
        self, pods: Iterable[cluster.ClusterPod], metric_selector: selectors.Selector
    ) -> list[cluster.ClusterPod]:
        """Cluster mode: the pods whose series labels (their Deployment) the metric label
        selector matches."""
        if metric_selector.is_empty():
            return list(pods)
        assert self.view is not None
        label = self._labels.deployment
        return [
            p
            for p in pods
            if metric_selector.matches({label: d} if (d := self.view.deployment_of(p)) else {})
        ]

    def _workload_scopes(
        self, workload: cluster.Workload, metric_selector: selectors.Selector
    ) -> list[promql.Scope]:
        assert self.view is not None
        pods = [p for p in self.view.pods(workload.namespace) if workload.selects(p)]
        names = [p.name for p in self._in_series(pods, metric_selector)]
        return self._name_scopes(workload.namespace, names)

    def _cluster_groups(
        self,
        group_resource: str,
        namespace: str | None,
        selector: selectors.Selector,
        metric_selector: selectors.Selector,
    ) -> dict[ObjectReference, list[promql.Scope]]:
        """Cluster mode: each selected Deployment, Service or namespace and its pods' scopes."""
        assert self.view is not None
        groups: dict[ObjectReference, list[promql.Scope]] = {}
        if group_resource == resources.NAMESPACES.group_resource:
            if selector.matches({}):  # no namespace informer: namespaces carry no known labels
                spaces: dict[str, list[str]] = defaultdict(list)
                for pod in self._in_series(self.view.pods(None), metric_selector):
                    spaces[pod.namespace].append(pod.name)
                for space, names in sorted(spaces.items()):
                    reference = ObjectReference("Namespace", "v1", space)
                    groups[reference] = self._name_scopes(space, names)
            return groups
        resource = resources.lookup(group_resource)
        assert resource is not None
        for workload in self.view.workloads(group_resource, namespace):
            if selector.matches(workload.labels):
                reference = ObjectReference(
                    resource.kind, resource.api_version, workload.name, workload.namespace
                )
                groups[reference] = self._workload_scopes(workload, metric_selector)
        return groups

    # -- querying --------------------------------------------------------------------------

    async def _ask(self, queries: Iterable[str]) -> list[list[Sample]]:
        """Every query at once; a 503 naming the backend when any fails."""
        try:
            return await asyncio.gather(*(self.client.query(q) for q in queries))
        except BackendError as error:
            raise errors.service_unavailable(
                f"the metrics backend (Prometheus at {self.client.url}) did not answer:"
                f" {error.cause}"
            ) from None

    def _source(self, metric: catalog.Metric) -> Source:
        source = self.source.source_of(metric)
        assert source is not None  # resolve() admits only the served names
        return source

    def _window_of(self, metric: catalog.Metric) -> int:
        return self._window if metric.windowed else self._gauge_window

    def _fresh(self, newest: float, evaluated_at: float | None) -> bool:
        return evaluated_at is not None and evaluated_at - newest <= self.queries.max_age_seconds

    async def _per_pod(
        self,
        metric: catalog.Metric,
        scopes: Sequence[promql.Scope],
        what: str,
        metric_selector: selectors.Selector,
        one_pod: bool = False,
    ) -> PodValues:
        """One value per pod sampled within the max age, or the 404 that says why none (for
        ``one_pod``, in the push path's words for one pod)."""
        result = await self._aggregates(metric, scopes, self.queries.per_pod, each_pod=True)
        newest = result.newest
        fresh = [g for g, t in newest.samples.items() if self._fresh(t, newest.evaluated_at)]
        groups = sorted(result.values)
        if not groups and one_pod:
            raise errors.not_found(
                self._nothing_fresh(what, metric, newest, metric_selector, one_pod=True)
            )
        if not groups:
            raise errors.not_found(
                f"{what}: {len(newest.samples)} pods with {self._source(metric).freshness.name}"
                f" series in Prometheus; {len(fresh)} sampled within the max age of"
                f" {self._max_age_text}"
                + ("" if not fresh else self._none_with(metric))
                + self._selector_note(metric_selector)
            )
        return PodValues(
            metric.name,
            [PodRef(*group) for group in groups],
            [result.values[group].value for group in groups],
            [result.values[group].timestamp for group in groups],
            self._window_of(metric),
            metric_selector,
        )

    async def _aggregates(
        self,
        metric: catalog.Metric,
        scopes: Sequence[promql.Scope],
        by: Sequence[str] = (),
        each_pod: bool = False,
    ) -> _Aggregates:
        """The value of each group ``by`` over the pods of ``scopes`` sampled within the max
        age, as the catalog aggregates ``metric``. Groups with no fresh pod are left out.
        ``each_pod``: ``by`` names the pod, so Prometheus computes each quantile."""
        if not scopes:
            return _Aggregates({}, _Newest({}, None))
        source = self._source(metric)
        of_pods = metric.aggregate in (catalog.Aggregate.MEAN, catalog.Aggregate.MAX)
        # a fraction is never summed: ask for each pod's value, and aggregate them here
        grouping = tuple(dict.fromkeys((*by, *self.queries.per_pod))) if of_pods else tuple(by)
        quantile = metric.quantile if each_pod else None
        parts = self._value_queries(source, scopes, grouping, quantile)
        queries = [query for part in parts for query in part]
        answers = await self._ask(
            [*queries, *(self.queries.newest_sample(source, s, by) for s in scopes)]
        )
        newest = _newest(answers[len(queries) :], by)
        answered = iter(answers)
        # one list of answers (one per scope) for each part
        per_part = [[next(answered) for _ in part] for part in parts]
        totals = _combine(metric, source, per_part, grouping, each_pod)
        if of_pods:
            totals = _over_pods(totals, len(by), metric.aggregate)
        aggregates = {}
        for group, timestamp in newest.samples.items():
            if not self._fresh(timestamp, newest.evaluated_at):
                continue
            value = _served(metric, totals.get(group))
            if value is not None:
                aggregates[group] = _Aggregate(value, timestamp)
        return _Aggregates(aggregates, newest)

    def _value_queries(
        self,
        source: Source,
        scopes: Sequence[promql.Scope],
        by: Sequence[str],
        quantile: float | None,
    ) -> list[list[str]]:
        """The queries of ``source``'s values, in parts: one part per series the value is made
        of (a sum's terms; a mean's time, then its counts; a histogram's buckets, or with
        ``quantile`` the quantile Prometheus computes), each part one query per scope."""
        queries = self.queries
        if isinstance(source, Gauge):
            terms = [queries.gauge(source, s, by, fresh_only=True) for s in scopes]
        elif isinstance(source, Counter):
            terms = [
                queries.rates(source.series, source.freshness, s, by, fresh_only=True)
                for s in scopes
            ]
        elif isinstance(source, Mean):
            series = (source.total, *source.count.series)
            terms = [
                queries.rates(series, source.freshness, s, by, fresh_only=True) for s in scopes
            ]
        elif quantile is not None:
            terms = [[queries.quantile(source, quantile, s, by)] for s in scopes]
        else:
            terms = [[queries.buckets(source, s, by, fresh_only=True)] for s in scopes]
        return [list(part) for part in zip(*terms, strict=True)]

    def _nothing_fresh(
        self,
        what: str,
        metric: catalog.Metric,
        newest: _Newest,
        metric_selector: selectors.Selector,
        one_pod: bool = False,
    ) -> str:
        """Why an object (or ``one_pod``) has no value: no series at all, none sampled recently
        enough, or none with a value; worded as the push path words it."""
        series = self._source(metric).freshness.name
        note = self._selector_note(metric_selector)
        if not newest.samples:
            if one_pod:
                return f"{what} has no {series} series in Prometheus" + note
            return f"{what}: no pod with {series} series in Prometheus" + note
        subject = f"{what} was" if one_pod else f"{what}: its pods were"
        latest = max(newest.samples.values())
        if self._fresh(latest, newest.evaluated_at):
            return (
                f"{subject} sampled within the max age of {self._max_age_text}"
                + self._none_with(metric)
                + note
            )
        age = (newest.evaluated_at or latest) - latest
        return (
            f"{subject} last sampled {seconds_text(age)} ago, more than the max age"
            f" of {self._max_age_text}" + note
        )

    async def _group_values(
        self,
        metric: catalog.Metric,
        groups: dict[ObjectReference, list[promql.Scope]],
        metric_selector: selectors.Selector,
    ) -> list[MetricValue]:
        references = list(groups)
        results = await asyncio.gather(*(self._aggregates(metric, groups[r]) for r in references))
        return [
            self._custom_value(metric, reference, result.values[()], metric_selector)
            for reference, result in zip(references, results, strict=True)
            if () in result.values
        ]

    async def _standalone_groups(
        self,
        metric: catalog.Metric,
        group_resource: str,
        namespace: str | None,
        metric_selector: selectors.Selector,
    ) -> list[MetricValue]:
        """Standalone: every Deployment (series label) or namespace with fresh pods."""
        if group_resource == resources.NAMESPACES.group_resource:
            label = self._labels.namespace
            scope = self._scope(None, metric_selector, promql.Matcher(label, "!=", ""))
            make: Callable[[str], ObjectReference] = lambda space: ObjectReference(  # noqa: E731
                "Namespace", "v1", space
            )
        else:
            label = self._labels.deployment
            scope = self._scope(namespace, metric_selector, promql.Matcher(label, "!=", ""))
            make = lambda name: ObjectReference("Deployment", "apps/v1", name, namespace)  # noqa: E731
        found = (await self._aggregates(metric, [scope], (label,))).values
        return [
            self._custom_value(metric, make(group[0]), found[group], metric_selector)
            for group in sorted(found)
        ]

    def _custom_value(
        self,
        metric: catalog.Metric,
        reference: ObjectReference,
        aggregate: _Aggregate,
        metric_selector: selectors.Selector,
    ) -> MetricValue:
        return MetricValue(
            reference,
            metric.name,
            aggregate.value,
            aggregate.timestamp,
            self._window_of(metric),
            metric_selector,
        )

    def _none_with(self, metric: catalog.Metric) -> str:
        """Why pods sampled recently have no value of ``metric``."""
        if not metric.windowed:
            return (
                f", none with {metric.name} within the gauge window of"
                f" {seconds_text(self.queries.gauge_window_seconds)}"
            )
        return (
            f", none with two samples of {self._source(metric).freshness.name} within the"
            f" window of {seconds_text(self.queries.window_seconds)} (rate() needs two:"
            " --window must span at least two scrape intervals)"
        )

    @staticmethod
    def _selector_note(metric_selector: selectors.Selector) -> str:
        if metric_selector.is_empty():
            return ""
        return f" (metric label selector {str(metric_selector)!r})"


def _served(metric: catalog.Metric, value: float | None) -> float | None:
    """What is served for a group's value: None (absent: no sample in the gauge window, or
    fewer than two in a rate's window) stays absent; NaN (no request in the window) is 0 for
    rates and quantiles, as the push path serves it."""
    if value is None or not math.isnan(value):
        return value
    return 0.0 if metric.windowed else None


def _group(sample: Sample, by: Sequence[str]) -> Group:
    labels = sample.labels
    return tuple([labels.get(label, "") for label in by])


def _newest(answers: Sequence[Sequence[Sample]], by: Sequence[str]) -> _Newest:
    """The newest sample time of each group over every part, and when they were evaluated."""
    newest: dict[Group, float] = {}
    evaluated_at = None
    for answer in answers:
        for sample in answer:
            group = _group(sample, by)
            newest[group] = max(newest.get(group, -math.inf), sample.value)
            evaluated_at = max(evaluated_at or sample.evaluated_at, sample.evaluated_at)
    return _Newest(newest, evaluated_at)


def _summed(answers: Sequence[Sequence[Sample]], by: Sequence[str]) -> dict[Group, float]:
    totals: dict[Group, float] = defaultdict(float)
    for answer in answers:
        for sample in answer:
            totals[_group(sample, by)] += sample.value
    return totals


def _combine(
    metric: catalog.Metric,
    source: Source,
    parts: Sequence[Sequence[Sequence[Sample]]],
    by: Sequence[str],
    computed: bool,
) -> dict[Group, float]:
    """Each group's value from the answers of ``_value_queries``' parts (``computed``: a
    histogram's answers are quantiles already)."""
    if isinstance(source, Histogram):
        if computed:
            quantiles = {_group(s, by): s.value for answer in parts[0] for s in answer}
        else:
            quantiles = _pooled_quantiles(parts[0], by, metric.quantile)
        return {group: value * source.unit_seconds for group, value in quantiles.items()}
    sums = [_summed(part, by) for part in parts]
    if isinstance(source, Gauge):  # waiting + running: a group needs every term
        groups = set(sums[0]).intersection(*sums[1:])
        return {group: sum(terms[group] for terms in sums) for group in groups}
    if isinstance(source, Counter):  # successes + failures: a missing term is none yet
        return {group: sum(terms.get(group, 0.0) for terms in sums) for group in set().union(*sums)}
    time, counts = sums[0], sums[1:]
    means = {}
    for group in set(time).union(*counts):
        count = sum(terms.get(group, 0.0) for terms in counts)
        means[group] = time.get(group, 0.0) * source.unit_seconds / count if count else math.nan
    return means


def _over_pods(
    per_pod: dict[Group, float], width: int, aggregate: catalog.Aggregate
) -> dict[Group, float]:
    """The mean or maximum of the pods' values in each group (its first ``width`` labels)."""
    groups: dict[Group, list[float]] = defaultdict(list)
    for group, value in per_pod.items():
        if not math.isnan(value):
            groups[group[:width]].append(value)
    combine = max if aggregate is catalog.Aggregate.MAX else statistics.fmean
    return {group: combine(values) for group, values in groups.items()}


def _pooled_quantiles(
    answers: Sequence[Sequence[Sample]], by: Sequence[str], quantile: float
) -> dict[Group, float]:
    """Each group's ``quantile`` of the bucket rates summed over every part."""
    buckets: dict[Group, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for answer in answers:
        for sample in answer:
            le = sample.labels.get("le")
            if le is not None and not math.isnan(sample.value):
                buckets[_group(sample, by)][float(le)] += sample.value
    return {group: histogram.bucket_quantile(quantile, b) for group, b in buckets.items()}


UNSERVED = {
    catalog.REQUIRED_REPLICAS: "it is computed from what pods push (the time each request"
    " held a worker slot, the service_time sketch, and the inference_worker_slots gauge), which"
    " the servers' Prometheus metrics do not carry: serve it from a replica with --source push"
}
"""Catalog metrics this provider never serves, and why (their 404 says so)."""
