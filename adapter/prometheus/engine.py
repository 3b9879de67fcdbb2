"""The Prometheus HTTP API client: instant queries (``GET /api/v1/query``) and nothing else.

Only instant queries are used, so Prometheus, Thanos Query, Mimir, Cortex and VictoriaMetrics
all answer. A query that cannot be answered raises ``BackendError`` naming the cause
(unreachable, no answer within the timeout, the engine's own error, an answer that is not a
vector); every query is counted by outcome and timed in the adapter's ``/metrics``
(``BackendTelemetry``); a query its caller abandons (cancelled) has no outcome and is not
counted. The client owns an ``aiohttp.ClientSession`` for its lifetime
(``async with client:``).
"""

from __future__ import annotations

import json
import math
import ssl
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import aiohttp
from prometheus_client import Counter, Histogram
from prometheus_client.registry import Collector

from adapter.client import TokenFile
from adapter.transport import bearer_token_problem

BACKEND = "prometheus"
OUTCOMES = ("success", "error", "timeout", "unreachable", "bad_answer")
MAX_CONCURRENT_QUERIES = 8
"""Connections to the engine per client (a split selection sends more queries than this: the
others wait for a connection, within their timeout)."""
MAX_ANSWER_BYTES = 32 * 2**20
"""The largest answer read (decompressed): about 300,000 pods' per-pod values, thirty times a
10,000-pod Deployment's. A larger one is refused, not buffered: an answer's JSON takes about ten
times its size once decoded, and a misconfigured query or a faulty proxy may never end."""
_READ_BYTES = 2**16
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BackendError(Exception):
    """Prometheus did not answer a query usefully. ``outcome`` is one of ``OUTCOMES``."""

    def __init__(self, outcome: str, cause: str) -> None:
        super().__init__(cause)
        self.outcome = outcome
        self.cause = cause


class Sample(NamedTuple):
    """One element of an instant vector (a NamedTuple: a 10,000-pod answer builds 10,000)."""

    labels: Mapping[str, str]
    value: float
    evaluated_at: float
    """The query's evaluation time (Unix seconds, the engine's clock)."""


class BackendTelemetry(Collector):
    """``adapter_backend_queries_total{backend, outcome}`` and the queries' duration."""

    def __init__(self) -> None:
        self.queries = Counter(
            "adapter_backend_queries",
            "Queries to the metrics backend, by outcome",
            ["backend", "outcome"],
            registry=None,
        )
        self.seconds = Histogram(
            "adapter_backend_query_duration_seconds",
            "Time from sending a backend query to its decoded answer (or failure)",
            ["backend"],
            buckets=_SECONDS_BUCKETS,
            registry=None,
        )
        for outcome in OUTCOMES:
            self.queries.labels(BACKEND, outcome)

    def observe(self, outcome: str, seconds: float) -> None:
        self.queries.labels(BACKEND, outcome).inc()
        self.seconds.labels(BACKEND).observe(seconds)

    def collect(self) -> Iterator[Any]:
        yield from self.queries.collect()
        yield from self.seconds.collect()


def decode_vector(body: bytes) -> list[Sample]:
    """The samples of a successful instant-query answer; ``BackendError`` for anything else.

    >>> decode_vector(b'{"status":"success","data":{"resultType":"vector","result":'
    ...     b'[{"metric":{"pod":"a"},"value":[1700000000.5,"NaN"]}]}}')[0].labels
    {'pod': 'a'}
    """
    try:
        document = json.loads(body)
        if document.get("status") != "success":
            raise BackendError("error", _error_text(document))
        data = document["data"]
        if data["resultType"] != "vector":
            raise BackendError("bad_answer", f"a {data['resultType']} answer, not a vector")
        samples = [
            Sample(item["metric"], float(item["value"][1]), float(item["value"][0]))
            for item in data["result"]
        ]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        raise BackendError(
            "bad_answer", f"an answer that is not a query result ({error})"
        ) from None
    if not all(_are_labels(sample.labels) for sample in samples):
        raise BackendError("bad_answer", "an answer whose labels are not names and strings")
    return samples


def _are_labels(labels: object) -> bool:
    """Whether ``labels`` is what the provider reads a series' labels as (a label set)."""
    return isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())


def _error_text(document: Any) -> str:
    if isinstance(document, dict) and "error" in document:
        return f"{document.get('errorType', 'error')}: {document['error']}"
    return "an error answer without a message"


class PrometheusClient:
    """Instant queries against one Prometheus-compatible URL."""

    def __init__(
        self,
        url: str,
        timeout_seconds: float,
        token_file: Path | None = None,
        ca_file: Path | None = None,
        telemetry: BackendTelemetry | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.max_answer_bytes = max_answer_bytes
        self.telemetry = telemetry or BackendTelemetry()
        self._token = None if token_file is None else TokenFile(token_file)
        self._ssl: ssl.SSLContext | bool = True
        if ca_file is not None:
            self._ssl = ssl.create_default_context(cafile=str(ca_file))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PrometheusClient:
        # The total timeout includes the wait for one of the connector's connections, so every
        # query of a request, queued or not, is answered or failed within the timeout.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=MAX_CONCURRENT_QUERIES),
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self) -> dict[str, str]:
        """The bearer token, read again whenever its file changes (projected tokens rotate);
        ``BackendError`` when it cannot be read or sent."""
        if self._token is None:
            return {}
        try:
            token = self._token()
        except OSError as error:
            raise BackendError("unreachable", f"cannot read the bearer token: {error}") from None
        problem = bearer_token_problem(token)
        if problem is not None:
            path = self._token.path
            raise BackendError("unreachable", f"the bearer token in {path} {problem}")
        return {"Authorization": f"Bearer {token}"}

    async def query(self, promql: str) -> list[Sample]:
        """Evaluate ``promql`` now; its samples (``value`` may be NaN)."""
        if self._session is None:
            raise RuntimeError("use the client inside 'async with'")
        started = time.perf_counter()
        try:
            samples = await self._query(self._session, promql)
        except BackendError as error:
            self.telemetry.observe(error.outcome, time.perf_counter() - started)
            raise
        self.telemetry.observe("success", time.perf_counter() - started)
        return samples

    async def _query(self, session: aiohttp.ClientSession, promql: str) -> list[Sample]:
        params = {"query": promql, "timeout": f"{max(1, math.floor(self.timeout_seconds))}s"}
        headers = self._headers()
        try:
            async with session.get(
                f"{self.url}/api/v1/query", params=params, headers=headers
            ) as response:
                body = await self._read(response)
                status = response.status
        except TimeoutError:
            raise BackendError(
                "timeout", f"no answer within the timeout of {self.timeout_seconds:g}s"
            ) from None
        except aiohttp.ClientError as error:
            raise BackendError("unreachable", f"cannot reach it: {error}") from None
        if status != 200:
            try:
                text = _error_text(json.loads(body))
            except ValueError:
                text = body[:200].decode(errors="replace").strip() or "no body"
            raise BackendError("error", f"HTTP {status}: {text}")
        return decode_vector(body)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, or ``BackendError`` as soon as it passes ``max_answer_bytes``."""
        limit = self.max_answer_bytes
        too_large = BackendError(
            "bad_answer", f"an answer larger than the limit of {limit / 2**20:g} MiB"
        )
        if (response.content_length or 0) > limit:
            raise too_large
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(_READ_BYTES):
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)
