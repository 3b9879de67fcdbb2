"""Hostile input over real TLS: never a 5xx, never an unhandled error, never a store change.

Hypothesis drives a synchronous test, so the server runs on an event loop in a thread of its own
and each generated request is handed to that loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.client import PodIdentity, encode_report
from adapter.report import PodRef
from adapter.sketch import LatencySketch
from tests.api.conftest import TOKEN, RunningAdapter, serve_adapter
from tests.conftest import Pki

T = TypeVar("T")
POD = PodIdentity("ml", "model-7d4b9c-aaaaa", "uid-a", {"app": "model"}, "model")
FUZZ = settings(
    deadline=None,
    # The server is module-scoped on purpose, and no_server_errors checks the log once after
    # all examples of a test.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
JSON_HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class ThreadedAdapter:
    """The adapter served from a background event loop, callable from synchronous code."""

    def __init__(self, server: RunningAdapter, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def post(self, body: bytes, headers: dict[str, str] = JSON_HEADERS) -> tuple[int, Any]:
        async def send() -> tuple[int, Any]:
            async with self.server.anonymous.post(
                f"{self.server.url}/push/v1", data=body, headers=headers
            ) as response:
                return response.status, await response.read()

        return self.call(send)

    def get(self, path: str) -> tuple[int, str]:
        async def send() -> tuple[int, str]:
            async with self.server.reader.get(f"{self.server.url}{path}") as response:
                return response.status, response.content_type

        return self.call(send)

    def snapshot(self) -> tuple[int, Any]:
        """What a rejected request must leave untouched."""
        record = self.server.state.store.get(PodRef(POD.namespace, POD.name))
        if record is None:
            return len(self.server.state.store), None
        state = (record.uid, record.last_seq, dict(record.gauges), record.completed_requests())
        return len(self.server.state.store), state


@pytest.fixture(scope="module")
def threaded(pki: Pki) -> Iterator[ThreadedAdapter]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    context = serve_adapter(pki)
    server = asyncio.run_coroutine_threadsafe(context.__aenter__(), loop).result(timeout=30)
    adapter = ThreadedAdapter(server, loop)
    valid = encode_report(POD, 1, {"inference_queue_depth": 2}, LatencySketch.empty(), 0)
    assert adapter.post(json.dumps(valid).encode())[0] == 200
    try:
        yield adapter
    finally:
        asyncio.run_coroutine_threadsafe(context.__aexit__(None, None, None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.ERROR, logger="adapter"):
        yield
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=20,
)


def _valid_body(seq: int) -> dict[str, Any]:
    sketch = LatencySketch.from_values([0.01, 0.02, 0.2])
    return encode_report(POD, seq, {"inference_queue_depth": 3}, sketch, 1_800_000_000)


def _mutations() -> st.SearchStrategy[dict[str, Any]]:
    """A valid body with one field, at any depth, replaced, removed or added."""
    paths = st.sampled_from(
        [
            ("pod",),
            ("pod", "namespace"),
            ("pod", "name"),
            ("pod", "uid"),
            ("pod", "labels"),
            ("pod", "owner"),
            ("pod", "owner", "kind"),
            ("seq",),
            ("timestamp",),
            ("gauges",),
            ("gauges", "inference_queue_depth"),
            ("latency",),
            ("latency", "relative_accuracy"),
            ("latency", "zero_count"),
            ("latency", "bins"),
            ("extra",),
        ]
    )

    def mutate(path: tuple[str, ...], value: Any, delete: bool) -> dict[str, Any]:
        body = _valid_body(seq=10**6)
        node = body
        for key in path[:-1]:
            node = node[key]
        if delete:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
        return body

    return st.builds(mutate, paths, json_values, st.booleans())


def _check_push(adapter: ThreadedAdapter, body: bytes, headers: dict[str, str]) -> None:
    before = adapter.snapshot()
    status, answer = adapter.post(body, headers)
    assert status < 500, answer
    if status != 200:
        assert adapter.snapshot() == before
        assert json.loads(answer)["kind"] == "Status"


@settings(FUZZ, max_examples=400)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_push_bodies(
    threaded: ThreadedAdapter, no_server_errors: None, body: bytes
) -> None:
    _check_push(threaded, body, JSON_HEADERS)


@settings(FUZZ, max_examples=400)
@given(_mutations())
def test_mutated_push_bodies(
    threaded: ThreadedAdapter, no_server_errors: None, body: dict[str, Any]
) -> None:
    _check_push(threaded, json.dumps(body).encode(), JSON_HEADERS)


@settings(FUZZ, max_examples=150)
@given(
    st.dictionaries(
        st.sampled_from(["Authorization", "Content-Type", "Content-Length", "X-Remote-User"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    )
)
def test_arbitrary_push_headers(
    threaded: ThreadedAdapter, no_server_errors: None, headers: dict[str, str]
) -> None:
    headers.pop("Content-Length", None)  # a lying length is a client-side error in aiohttp
    _check_push(threaded, json.dumps(_valid_body(seq=10**7)).encode(), headers)


segment = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"),
    min_size=0,
    max_size=12,
)


@settings(FUZZ, max_examples=400)
@given(
    prefix=st.sampled_from(
        [
            "/apis/custom.metrics.k8s.io/v1beta2",
            "/apis/custom.metrics.k8s.io/v1beta1",
            "/apis/external.metrics.k8s.io/v1beta1",
            "/apis",
            "",
        ]
    ),
    segments=st.lists(st.sampled_from(["namespaces", "ml", "pods", "*", "metrics"]) | segment),
    selector=st.text(max_size=40),
    metric_selector=st.text(max_size=20),
)
def test_arbitrary_urls_and_selectors(
    threaded: ThreadedAdapter,
    no_server_errors: None,
    prefix: str,
    segments: list[str],
    selector: str,
    metric_selector: str,
) -> None:
    path = prefix + "".join("/" + quote(s, safe="*") for s in segments)
    query = f"?labelSelector={quote(selector)}&metricLabelSelector={quote(metric_selector)}"
    status, content_type = threaded.get(path + query)
    assert status < 500
    if status != 200 or prefix:
        assert content_type == "application/json"
