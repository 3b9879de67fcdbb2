"""The HPA's metrics clients answered in process by the adapter's own ``StoreProvider``.

``ProviderMetrics`` is a ``localcluster.controller.MetricsSource``: for each metric of the
HPA's spec it makes the provider call the adapter's API layer makes for the URL that
kube-controller-manager requests (``localcluster.metrics_client``: Pods with the scale's
selector and the metric's ``metricLabelSelector``, Object on its described object, External
with its selector), turns each value into the Quantity the API would serve and back into the
milli-value the HPA reads, and turns a provider error into the ``FetchError`` the HPA reports,
worded as the HTTPS client words it. So ``localcluster.controller.HpaController`` runs unchanged
in virtual time; ``complete`` drives its coroutines, which never wait here.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from adapter import errors, quantity, resources, selectors
from adapter.provider import CustomMetricInfo
from adapter.store_provider import StoreProvider
from localcluster import hpa
from localcluster import replica_calculator as rc
from localcluster.metrics_client import (
    ApiFailure,
    NoMetrics,
    fetch_error,
    resource_for,
    selector_text,
)

Result = TypeVar("Result")

PREFERRED_VERSION = "v1beta2"


def complete(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """Run a coroutine that never suspends (nothing it awaits waits) to its result.

    Raises ``RuntimeError`` if it does suspend: in virtual time nothing may wait for real time.
    """
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a simulated call waited on something; nothing may in virtual time")


def wire_milli(value: float) -> int:
    """The milli-value the HPA reads from the Quantity the adapter serves for ``value``."""
    return quantity.milli_value(quantity.parse_quantity(quantity.format_quantity(value)))


class ProviderMetrics:
    """The custom and external metrics APIs of one adapter, without HTTP."""

    def __init__(self, provider: StoreProvider) -> None:
        self.provider = provider
        self.custom_version: str | None = PREFERRED_VERSION

    async def discover(self) -> str:
        return PREFERRED_VERSION

    async def observe(
        self, namespace: str, spec: hpa.MetricSpec, pod_selector: str
    ) -> hpa.Observation:
        """One metric's observation for the math, or the FetchError the HPA would record."""
        try:
            metric_selector = selectors.parse(selector_text(spec.selector))
            if spec.type == hpa.PODS:
                return await self._pods(namespace, spec, pod_selector, metric_selector)
            if spec.type == hpa.OBJECT:
                return await self._object(namespace, spec, metric_selector)
            if spec.type == hpa.EXTERNAL:
                return await self._external(namespace, spec, metric_selector)
            raise ApiFailure(f"metric type {spec.type} {spec.resource or ''} is not simulated")
        except (errors.ApiError, selectors.InvalidSelector) as error:
            failure = ApiFailure(str(error))
        except ApiFailure as error:
            failure = error
        api = "external metrics API" if spec.type == hpa.EXTERNAL else "custom metrics API"
        return fetch_error(api, failure)

    async def _pods(
        self,
        namespace: str,
        spec: hpa.MetricSpec,
        pod_selector: str,
        metric_selector: selectors.Selector,
    ) -> rc.PodMetrics:
        assert spec.metric_name is not None
        info = CustomMetricInfo(resources.PODS.group_resource, True, spec.metric_name)
        values = await self.provider.get_metric_by_selector(
            info, namespace, selectors.parse(pod_selector), metric_selector
        )
        if not values:
            raise NoMetrics("no metrics returned from custom metrics API")
        return rc.PodMetrics(
            tuple(
                rc.PodMetricSample(
                    value.described_object.name,
                    wire_milli(value.value),
                    value.timestamp,
                    float(value.window_seconds or rc.DEFAULT_METRIC_WINDOW_SECONDS),
                )
                for value in values
            )
        )

    async def _object(
        self, namespace: str, spec: hpa.MetricSpec, metric_selector: selectors.Selector
    ) -> rc.ObjectMetricValue:
        reference = spec.described_object
        assert reference is not None and spec.metric_name is not None
        if reference.kind == "Namespace" and reference.api_version in ("", "v1"):
            info = CustomMetricInfo(resources.NAMESPACES.group_resource, False, spec.metric_name)
            value = await self.provider.get_metric_by_name(info, None, namespace, metric_selector)
        else:
            info = CustomMetricInfo(resource_for(reference), True, spec.metric_name)
            value = await self.provider.get_metric_by_name(
                info, namespace, reference.name, metric_selector
            )
        return rc.ObjectMetricValue(wire_milli(value.value), value.timestamp)

    async def _external(
        self, namespace: str, spec: hpa.MetricSpec, metric_selector: selectors.Selector
    ) -> rc.ExternalMetricValues:
        assert spec.metric_name is not None
        values = await self.provider.get_external_metric(
            namespace, spec.metric_name, metric_selector
        )
        if not values:
            raise NoMetrics("no metrics returned from external metrics API")
        return rc.ExternalMetricValues(
            tuple(wire_milli(v.value) for v in values), max(v.timestamp for v in values)
        )
