"""Fetch an HPA's metrics over HTTPS exactly as kube-controller-manager does.

Once per sync the client discovers the custom metrics API's preferred version from ``/apis``
(as the HPA's discovery-based client does), then asks for each metric of the spec with the same
URLs, selectors and ``metricLabelSelector`` the controller sends (reference section 3.3 and 11):

- Pods: ``/apis/custom.metrics.k8s.io/{v}/namespaces/{ns}/pods/*/{metric}?labelSelector=...``
- Object: ``.../namespaces/{ns}/{resource}/{name}/{metric}``, or
  ``.../namespaces/{ns}/metrics/{metric}`` for a Namespace
- External: ``/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}?labelSelector=...``

Answers become the math's observations; failures become ``FetchError`` with the message the HPA's
metrics client reports: ``unable to fetch metrics from <API>: `` and what client-go reports (the
``Status`` message, or its generic text when the body is not a ``Status``), or, for an empty
answer, ``no metrics returned from <API>``; so the emulated HPA shows the same conditions and events
as the real one. Resource (CPU) metrics come from a callable, as the resource metrics API would
serve them.
"""

from __future__ import annotations

import datetime
import json
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from adapter import quantity, resources, selectors
from localcluster import hpa
from localcluster import replica_calculator as rc

logger = logging.getLogger(__name__)

CUSTOM_GROUP = "custom.metrics.k8s.io"
EXTERNAL_PATH = "/apis/external.metrics.k8s.io/v1beta1"
KNOWN_VERSIONS = ("v1beta2", "v1beta1")


class ApiFailure(Exception):
    """A request that did not give a usable answer; ``str()`` is client-go's wording."""


class NoMetrics(ApiFailure):
    """An answer with no items; ``str()`` is the HPA metrics client's own (unwrapped) error."""


def fetch_error(api: str, failure: ApiFailure) -> rc.FetchError:
    """The HPA metrics client's error for a failed request to ``api`` (``custom metrics API``)."""
    if isinstance(failure, NoMetrics):
        return rc.FetchError(str(failure))
    return rc.FetchError(f"unable to fetch metrics from {api}: {failure}")


def _timestamp(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.datetime.fromisoformat(text).timestamp()


def _milli(text: str) -> int:
    return quantity.milli_value(quantity.parse_quantity(text))


def resource_for(reference: hpa.ObjectReference) -> str:
    """The group-qualified plural the HPA's REST mapping gives a described object's kind."""
    group = reference.api_version.rpartition("/")[0] if "/" in reference.api_version else ""
    for known in resources.KNOWN:
        known_group = known.api_version.rpartition("/")[0] if "/" in known.api_version else ""
        if known.kind == reference.kind and known_group == group:
            return known.group_resource
    plural = reference.kind.lower() + "s"
    return f"{plural}.{group}" if group else plural


def selector_text(selector: selectors.LabelSelector | Mapping[str, Any] | None) -> str:
    """A ``LabelSelector`` in the text form the client sends (``k=v,k2 in (a,b)``);
    ``ApiFailure`` for an operator it has no form for (the HPA's own check of the selector,
    ``hpa._check_metric_selector``, fails such a metric first, in upstream's words)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key") or "", expression.get("operator") or ""
        values = ",".join(sorted(expression.get("values") or []))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(operator)
        if text is None:
            raise ApiFailure(f'"{operator}" is not a valid label selector operator')
        parts.append(text)
    return ",".join(parts)


class MetricsClient:
    """One HTTPS session to the adapter (or the aggregator) with the controller's credentials."""

    def __init__(
        self,
        base_url: str,
        ssl_context: ssl.SSLContext,
        cpu_usage: Callable[[], rc.PodMetrics] | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._ssl = ssl_context
        self._cpu_usage = cpu_usage
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self.custom_version: str | None = None

    async def __aenter__(self) -> MetricsClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=self._timeout
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, path: str, resource: str) -> dict[str, Any]:
        """GET ``path``; an error answer raises ApiFailure worded as client-go words it."""
        assert self._session is not None
        try:
            async with self._session.get(
                self.base_url + path, headers={"Accept": "application/json, */*"}
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ApiFailure(f'Get "{self.base_url}{path}": {error}') from error
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if status == 200 and isinstance(document, dict):
            return document
        if isinstance(document, dict) and document.get("kind") == "Status":
            raise ApiFailure(str(document.get("message", "")))
        generic = {
            401: "the server has asked for the client to provide credentials",
            403: "forbidden",
            404: "the server could not find the requested resource",
            503: "the server is currently unable to handle the request",
        }.get(
            status,
            f"an error on the server ({body[:80]!r}) has prevented the request from succeeding",
        )
        raise ApiFailure(f"{generic} (get {resource})")

    async def discover(self) -> str:
        """The custom metrics API version to use: the group's preferred one, if known."""
        groups = await self._get("/apis", "apis")
        for group in groups.get("groups", []):
            if group.get("name") != CUSTOM_GROUP:
                continue
            preferred = (group.get("preferredVersion") or {}).get("version")
            versions = [v.get("version") for v in group.get("versions", [])]
            for candidate in [preferred, *versions]:
                if candidate in KNOWN_VERSIONS:
                    self.custom_version = candidate
                    return candidate
        raise ApiFailure(f"no custom metrics API ({CUSTOM_GROUP}) registered")

    def _custom_path(self, tail: str) -> str:
        return f"/apis/{CUSTOM_GROUP}/{self.custom_version}/{tail}"

    async def _pods(self, namespace: str, spec: hpa.MetricSpec, pod_selector: str) -> rc.PodMetrics:
        query = {"labelSelector": pod_selector}
        metric_selector = selector_text(spec.selector)
        if metric_selector:
            query["metricLabelSelector"] = metric_selector
        path = self._custom_path(f"namespaces/{namespace}/pods/*/{spec.metric_name}")
        document = await self._get(f"{path}?{urlencode(query)}", f"pods.{CUSTOM_GROUP} *")
        items = document.get("items") or []
        if not items:
            raise NoMetrics("no metrics returned from custom metrics API")
        return rc.PodMetrics(
            tuple(
                rc.PodMetricSample(
                    pod=item["describedObject"]["name"],
                    value_milli=_milli(item["value"]),
                    timestamp=_timestamp(item.get("timestamp")),
                    window_seconds=float(
                        item.get(
                            "windowSeconds", item.get("window", rc.DEFAULT_METRIC_WINDOW_SECONDS)
                        )
                    ),
                )
                for item in items
            )
        )

    async def _object(self, namespace: str, spec: hpa.MetricSpec) -> rc.ObjectMetricValue:
        reference = spec.described_object
        assert reference is not None
        if reference.kind == "Namespace" and reference.api_version in ("", "v1"):
            tail = f"namespaces/{namespace}/metrics/{spec.metric_name}"
            resource_text = f"namespaces.{CUSTOM_GROUP} {spec.metric_name}"
        else:
            resource = resource_for(reference)
            tail = f"namespaces/{namespace}/{resource}/{quote(reference.name)}/{spec.metric_name}"
            resource_text = f"{resource}.{CUSTOM_GROUP} {reference.name}"
        path = self._custom_path(tail)
        metric_selector = selector_text(spec.selector)
        if metric_selector:
            path += "?" + urlencode({"metricLabelSelector": metric_selector})
        items = (await self._get(path, resource_text)).get("items") or []
        if len(items) != 1:
            raise ApiFailure(
                f"the custom metrics API server returned {len(items)} results when we asked for"
                " exactly one"
            )
        return rc.ObjectMetricValue(
            _milli(items[0]["value"]), _timestamp(items[0].get("timestamp"))
        )

    async def _external(self, namespace: str, spec: hpa.MetricSpec) -> rc.ExternalMetricValues:
        path = f"{EXTERNAL_PATH}/namespaces/{namespace}/{spec.metric_name}"
        metric_selector = selector_text(spec.selector)
        if metric_selector:
            path += "?" + urlencode({"labelSelector": metric_selector})
        items = (await self._get(path, f"{spec.metric_name}.external.metrics.k8s.io")).get(
            "items"
        ) or []
        if not items:
            raise NoMetrics("no metrics returned from external metrics API")
        return rc.ExternalMetricValues(
            tuple(_milli(item["value"]) for item in items),
            max(_timestamp(item.get("timestamp")) for item in items),
        )

    async def observe(
        self, namespace: str, spec: hpa.MetricSpec, pod_selector: str
    ) -> hpa.Observation:
        """One metric's observation for the math, or the FetchError the HPA would record."""
        try:
            if spec.type == hpa.PODS:
                return await self._pods(namespace, spec, pod_selector)
            if spec.type == hpa.OBJECT:
                return await self._object(namespace, spec)
            if spec.type == hpa.EXTERNAL:
                return await self._external(namespace, spec)
            if spec.type == hpa.RESOURCE and spec.resource == rc.CPU and self._cpu_usage:
                metrics = self._cpu_usage()
                if not metrics.samples:
                    raise NoMetrics("no metrics returned from resource metrics API")
                return metrics
            raise ApiFailure(f"metric type {spec.type} {spec.resource or ''} is not available here")
        except ApiFailure as failure:
            api = {hpa.EXTERNAL: "external metrics API", hpa.RESOURCE: "resource metrics API"}
            return fetch_error(api.get(spec.type, "custom metrics API"), failure)
