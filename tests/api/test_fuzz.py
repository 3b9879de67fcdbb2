"""Hostile input over real TLS: never a 5xx, never an unhandled error, never a store change.

Over 10,000 generated requests per run (push bodies, mutated reports, push headers, URLs and
selectors, valid reports at the edges of the contract followed by queries), all through the real
application, middlewares and handlers over a real TLS connection, in about 20 s of one core
(about 1.8 ms per request, of which about 0.8 ms is the adapter answering).

How that fits the time: Hypothesis costs about a millisecond per *example*, far more than the
adapter takes to answer one request, so every example is a batch of ``BATCH`` generated
requests, and the JSON strategy avoids ``st.recursive`` (ten times dearer per value). The server
runs on an event loop in a thread of its own; a batch is handed to that loop once, and there a
raw HTTP/1.1 client sends it request by request on one keep-alive TLS connection (a raw client
also sends request targets as generated, where an HTTP library would normalise them). The store
is fingerprinted before and after every request, on the server's loop, where nothing else runs
between the two: a rejected request must leave it as it was.

Hypothesis is derandomized (a fixed seed, no example database), so CI runs the same examples
every time; ``FUZZ_SEED=<int>`` explores other ones, and a failure prints the
blob that reproduces it.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from adapter import catalog, quantity
from adapter.client import PodIdentity, encode_report
from adapter.config import PushConfig
from adapter.push import MAX_BIN_COUNT, MAX_SEQ, MAX_ZERO_COUNT
from adapter.report import REQUESTS_SHED, WORKER_SLOTS
from adapter.sketch import MAX_INDEX, MIN_INDEX, RELATIVE_ACCURACY, LatencySketch
from adapter.store import Store
from tests.api.conftest import TOKEN, RunningAdapter, serve_adapter
from tests.conftest import Pki
from tests.rawhttp import RawHttp, Request

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
"""A failing batch prints long (``BATCH`` requests); the failure must not become this warning."""
BATCH = 50
"""Generated requests per Hypothesis example."""
POD = PodIdentity("ml", "model-7d4b9c-aaaaa", "uid-a", {"app": "model"}, "model")
PUSH_HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
_SEED = os.environ.get("FUZZ_SEED")
T = TypeVar("T")


def fuzz_settings(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Deterministic by default; ``FUZZ_SEED`` picks another seed to explore with."""
    configured = settings(
        # No shrinking: the assertion names the failing request, and shrinking a batch of HTTP
        # exchanges can take minutes.
        phases=[Phase.explicit, Phase.generate],
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=_SEED is None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )

    def apply(test: Callable[..., None]) -> Callable[..., None]:
        test = configured(test)
        return hypothesis_seed(int(_SEED))(test) if _SEED is not None else test

    return apply


# -- the wire --------------------------------------------------------------------------------


@dataclass
class Answer:
    """What came back for one request, and whether the store changed while it was handled."""

    request: Request
    status: int
    headers: dict[str, str]
    body: bytes
    store_changed: bool

    def fail(self, problem: str) -> str:
        return (
            f"{problem}: {self.request.method} {self.request.target[:300]!r}"
            f" headers={self.request.headers} body={self.request.body[:300]!r}"
            f" -> {self.status} {self.body[:300]!r}"
        )


def store_fingerprint(store: Store) -> tuple[Any, ...]:
    """Everything a push can change, for every tracked pod (the fuzz store holds a handful)."""
    return tuple(
        (
            record.pod,
            record.uid,
            record.last_seq,
            record.last_seen,
            record.first_seen,
            tuple(record.gauges.items()),
            tuple(record.labels.items()),
            record.owner,
            record.window_zero_count,
            tuple(record.window_bins.items()),
        )
        for record in store.pods(None)
    )


@dataclass
class ThreadedAdapter:
    """The adapter served from a background event loop, fed batches from synchronous code."""

    server: RunningAdapter
    loop: asyncio.AbstractEventLoop
    client: RawHttp
    """Presents the client certificate (queries need it; pushes ignore it)."""
    sent: int = 0
    loop_cpu_seconds: float = 0.0
    """CPU time of the server's thread (server and raw client) spent on the batches."""

    def on_loop(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` on the server's loop and wait for its result."""

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=120)

    def send(self, requests: Sequence[Request]) -> list[Answer]:
        """Each request in turn, with the store fingerprinted around it."""

        async def run() -> list[Answer]:
            started, answers = time.thread_time(), []
            for request in requests:
                before = store_fingerprint(self.server.state.store)
                status, headers, body = await self.client.exchange(request)
                changed = store_fingerprint(self.server.state.store) != before
                answers.append(Answer(request, status, headers, body, changed))
            self.loop_cpu_seconds += time.thread_time() - started
            return answers

        answers = self.on_loop(run)
        self.sent += len(answers)
        return answers


@pytest.fixture(scope="module")
def threaded(pki: Pki) -> Iterator[ThreadedAdapter]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    # Edge reports push one pod back to back: no per-pod rate limit here.
    unlimited = PushConfig(max_pod_push_rate=1e9)
    context: AbstractAsyncContextManager[RunningAdapter] = serve_adapter(pki, push=unlimited)
    server = asyncio.run_coroutine_threadsafe(context.__aenter__(), loop).result(timeout=30)
    port = int(server.url.rsplit(":", 1)[1])
    adapter = ThreadedAdapter(server, loop, RawHttp(port, pki.client_context()))
    [answer] = adapter.send([push(json.dumps(_valid_body(seq=1)).encode())])
    assert answer.status == 200, answer.body
    try:
        yield adapter
    finally:
        adapter.on_loop(adapter.client.close)
        adapter.on_loop(lambda: context.__aexit__(None, None, None))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def fuzz(threaded: ThreadedAdapter, caplog: pytest.LogCaptureFixture) -> Iterator[ThreadedAdapter]:
    """The shared server; after the test, no error logged by any logger, in any thread."""
    with caplog.at_level(logging.ERROR):
        yield threaded
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, caplog.text


def push(body: bytes, headers: dict[str, str] = PUSH_HEADERS) -> Request:
    return Request("POST", "/push/v1", headers, body)


def check_push(answers: Sequence[Answer]) -> None:
    """No 5xx; a rejection is a ``Status`` document and leaves the store as it was."""
    for answer in answers:
        assert answer.status < 500, answer.fail("server error")
        if answer.status == 200:
            continue
        assert not answer.store_changed, answer.fail("a rejected push changed the store")
        assert json.loads(answer.body)["kind"] == "Status", answer.fail("not a Status")


def batches(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(strategy, min_size=BATCH, max_size=BATCH)


# -- strategies ------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)


def _nest(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        inner
        | st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    )


json_values = _nest(_nest(scalars))
"""JSON documents two containers deep (``st.recursive`` costs ten times as much per value)."""

EDGES: tuple[Any, ...] = (
    0,
    -1,
    1,
    0.01,
    0.010000001,
    -0.0,
    5e-324,
    1e15,
    1.0000000000000002e15,
    1.7976931348623157e308,
    MAX_BIN_COUNT,
    MAX_BIN_COUNT + 1,
    MAX_ZERO_COUNT,
    MAX_ZERO_COUNT + 1,
    MAX_SEQ,
    MAX_SEQ + 1,
    10**400,
    True,
    "",
    " ",
    "0",
    "01",
    "+1",
    str(MIN_INDEX),
    str(MIN_INDEX - 1),
    str(MAX_INDEX),
    str(MAX_INDEX + 1),
    "A",
    "-",
    "a" * 63,
    "a" * 64,
    "a" * 253,
    "a" * 254,
    "example.com/app",
    "é",
    "\x00",
    "\ud800",
    "2026-11-28T15:00:00Z",
    "2026-11-28 15:00:00",
    "2026-11-28T15:00:00",
    [],
    {},
)
"""Values at or just past the contract's limits, and the usual suspects."""

FIELD_PATHS: tuple[tuple[str, ...], ...] = (
    ("pod",),
    ("pod", "namespace"),
    ("pod", "name"),
    ("pod", "uid"),
    ("pod", "labels"),
    ("pod", "labels", "app"),
    ("pod", "owner"),
    ("pod", "owner", "kind"),
    ("pod", "owner", "name"),
    ("seq",),
    ("timestamp",),
    ("gauges",),
    ("gauges", "inference_queue_depth"),
    ("gauges", "inference_concurrency"),
    ("latency",),
    ("latency", "relative_accuracy"),
    ("latency", "zero_count"),
    ("latency", "bins"),
)
_KEYS = st.sampled_from([str(edge) for edge in EDGES if isinstance(edge, str | int)]) | st.text(
    max_size=20
)
field_paths = st.sampled_from(FIELD_PATHS) | st.builds(
    lambda parent, key: (*parent, key),
    st.sampled_from(
        [(), ("pod",), ("pod", "labels"), ("gauges",), ("latency",), ("latency", "bins")]
    ),
    _KEYS,
)
field_values = st.sampled_from(EDGES) | _nest(scalars)
"""One container deep: where the contract wants a scalar, any container is already wrong."""


def _valid_body(seq: int) -> dict[str, Any]:
    sketch = LatencySketch.from_values([0.01, 0.02, 0.2])
    return encode_report(POD, seq, {"inference_queue_depth": 3}, sketch, 1_800_000_000)


_MUTATED_SEQ = 10**6
_VALID_TEXT = json.dumps(_valid_body(seq=_MUTATED_SEQ))


def _mutate(changes: list[tuple[tuple[str, ...], Any, bool]]) -> bytes:
    """A valid report with each change applied: a field set to a value, or deleted."""
    body = json.loads(_VALID_TEXT)
    for path, value, delete in changes:
        node: Any = body
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue  # an earlier change replaced the parent
        if delete:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return json.dumps(body).encode()


CHANGES = (
    *((path, value, False) for path in FIELD_PATHS for value in EDGES),
    *((path, None, True) for path in FIELD_PATHS),
)
"""Every edge value in every field, and every field removed: each one draw for Hypothesis."""
mutated_bodies = st.lists(
    st.sampled_from(CHANGES) | st.tuples(field_paths, field_values, st.booleans()),
    min_size=1,
    max_size=3,
).map(_mutate)

arbitrary_bodies = (
    st.binary(max_size=300)
    | st.text(max_size=100).map(lambda text: text.encode("utf-8", "surrogatepass"))
    | json_values.map(lambda value: json.dumps(value).encode())
)

NASTY_BODIES = (
    b"",
    b"[" * 100_000,
    b'{"pod":' * 30_000,
    b"1" * 5_000,
    b"\xef\xbb\xbf{}",
    b"\xff\xfe{}",
    b'{"seq": NaN}',
    b'{"seq": 1, "seq": 2}',
    _VALID_TEXT.encode() + b" " * (256 * 1024),
    _VALID_TEXT.replace(str(_MUTATED_SEQ), "9" * 5000).encode(),
)
"""Deep nesting, long numbers, byte-order marks, an oversized body: every one is rejected."""

_PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)
header_values = st.sampled_from(
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"Bearer {TOKEN} ",
        "Bearer",
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/json; charset=latin-1",
        "text/plain",
        "system:masters",
    ]
) | st.text(alphabet=_PRINTABLE, max_size=40)
push_headers = st.dictionaries(
    st.sampled_from(["Authorization", "Content-Type", "X-Remote-User", "X-Remote-Group"]),
    header_values,
)

# URLs. Hypothesis pays per choice it makes, so the grammar's pieces are combined here once and
# each piece is one draw: a segment, a selector requirement, a query tail.
SEGMENTS = (
    *("namespaces", "ml", "pods", "*", "metrics", "deployments.apps", "services", "nodes"),
    *(metric.name for metric in catalog.METRICS),
    *("", ".", "..", "%", "%zz", "%2F", "%00", "a%2Fb", "~", "*.*", "Pods", "a" * 254),
)
_PATH_CHARACTERS = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#")
segments = (
    st.sampled_from(SEGMENTS)
    | st.text(max_size=12).map(lambda text: quote(text, safe="*"))
    | st.text(alphabet=_PATH_CHARACTERS, max_size=12)
)
PREFIXES = (
    "/apis/custom.metrics.k8s.io/v1beta2",
    "/apis/custom.metrics.k8s.io/v1beta1",
    "/apis/external.metrics.k8s.io/v1beta1",
    "/apis/custom.metrics.k8s.io/v2",
    "/apis",
    "/push/v1",
    "/metrics",
    "/openapi/v2",
    "/healthz",
    "",
)
_WORDS = ("app", "model", "in", "notin", "example.com/app", "-x", "a" * 64, "1", "", "x/y/z", "é")
_OPERATORS = ("", "=", "==", "!=", ">", "<", " in ", " notin ", " ", "=!")
_OPERANDS = (*_WORDS, "(", "()", "(a,,b)", "(model)", "(a", "-1", "x)", "9" * 20, "\x00")
REQUIREMENTS = tuple(
    bang + key + operator + operand
    for bang in ("", "!")
    for key in _WORDS
    for operator in _OPERATORS
    for operand in _OPERANDS
)
"""Label-selector requirements (4,400 of them), most of them almost right."""
selectors = (
    st.lists(st.sampled_from(REQUIREMENTS), max_size=3).map(",".join)
    | st.text(max_size=40)
    | st.text(alphabet=st.sampled_from("ab=!,() \tin"), max_size=20)
)
QUERY_TAILS = (
    "",
    "&metricLabelSelector=",
    "&metricLabelSelector=a%3Db",
    "&metricLabelSelector=a+in+(",
    "&labelSelector=app%3Dmodel",
    "&watch=true",
    "&labelSelector",
    "&&",
    "&%ff=%fe",
)
query_urls = st.builds(
    lambda method, prefix, parts, selector, tail: (
        method,
        (prefix + "".join("/" + part for part in parts) or "/")
        + f"?labelSelector={quote(selector)}{tail}",
    ),
    st.sampled_from(["GET"] * 6 + ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    st.sampled_from(PREFIXES),
    st.lists(segments, max_size=6),
    selectors,
    st.sampled_from(QUERY_TAILS),
)


# Valid reports at the edges of the contract, then queries over them.
EDGE_NAMESPACE = "edge"
EDGE_DEPLOYMENTS = ("model", "d" * 253)
EDGE_PODS = ("a", "model-0", "p" * 253)
_LABEL_KEYS = ("app", "example.com/app", "k" * 63, f"{'e' * 253}/{'k' * 63}", "A.b-c_9")
_LABEL_VALUES = ("", "model", "v" * 63, "A.b-c_9", "0")
EDGE_SKETCHES: dict[str, dict[int, int]] = {
    "empty": {},
    "lowest bin": {MIN_INDEX: 1},
    "highest bin, largest count": {MAX_INDEX: MAX_BIN_COUNT},
    "both ends": {MIN_INDEX: MAX_BIN_COUNT, 0: 1, MAX_INDEX: MAX_BIN_COUNT},
    "every bin": dict.fromkeys(range(MIN_INDEX, MAX_INDEX + 1), MAX_BIN_COUNT),
}
"""The extreme bins, the largest counts, every bin there is (by name: a failing
example then prints short)."""
_OFFSETS = [datetime.timezone(datetime.timedelta(minutes=m)) for m in (0, 14 * 60, -(12 * 60), 1)]
_SEQUENCE = itertools.count(1)


def _edge_report(
    pod: str,
    uid: str,
    labels: dict[str, str],
    owner: str | None,
    gauges: dict[str, float],
    bins: dict[int, int] | str,
    zero_count: int,
    timestamp: datetime.datetime | None,
) -> bytes:
    """A report that keeps every rule of docs/push-protocol.md, with a fresh ``seq``; ``bins``
    may name one of ``EDGE_SKETCHES``."""
    if isinstance(bins, str):
        bins = EDGE_SKETCHES[bins]
    report: dict[str, Any] = {
        "pod": {"namespace": EDGE_NAMESPACE, "name": pod, "uid": uid, "labels": labels},
        "seq": next(_SEQUENCE),
        "gauges": gauges,
        "latency": {
            "relative_accuracy": RELATIVE_ACCURACY,
            "zero_count": zero_count,
            "bins": {str(index): count for index, count in bins.items()},
        },
    }
    if owner is not None:
        report["pod"]["owner"] = {"kind": "Deployment", "name": owner}
    if timestamp is not None:
        report["timestamp"] = timestamp.isoformat()
    return json.dumps(report).encode()


_MODEL_GAUGES = (WORKER_SLOTS, REQUESTS_SHED)
"""The gauges only the required replicas read."""


edge_reports = st.builds(
    _edge_report,
    st.sampled_from(EDGE_PODS),
    st.sampled_from(["u1", "u2", "9" * 128]),
    st.dictionaries(st.sampled_from(_LABEL_KEYS), st.sampled_from(_LABEL_VALUES), max_size=3),
    st.sampled_from([None, *EDGE_DEPLOYMENTS]),
    st.dictionaries(
        st.sampled_from([catalog.METRICS[0].name, catalog.METRICS[1].name, *_MODEL_GAUGES]),
        st.sampled_from([0, 5e-324, 0.5, 1e-9, 1e15, 123456.789]) | st.floats(0, 1e15),
    ),
    st.sampled_from(sorted(EDGE_SKETCHES))
    | st.dictionaries(st.integers(MIN_INDEX, MAX_INDEX), st.integers(1, MAX_BIN_COUNT), max_size=4),
    st.sampled_from([0, 1, MAX_ZERO_COUNT]),
    st.none() | st.datetimes(timezones=st.sampled_from(_OFFSETS)),
)
_EDGE_SELECTORS = ("", "app%3Dmodel", "app", "%21app", "example.com%2Fapp+in+(model,)", "app%3D")


def _with_slo(metric: str, selectors: tuple[str, ...]) -> tuple[str, ...]:
    """``selectors`` (``?name=value`` or empty), with the SLO the required replicas need."""
    if metric != catalog.REQUIRED_REPLICAS:
        return selectors
    external = any("labelSelector" in s for s in selectors)
    name = "labelSelector" if external else "metricLabelSelector"
    return tuple(f"{s}%2Cslo%3D500ms" if s else f"?{name}=slo%3D500ms" for s in selectors)


EDGE_QUERIES = tuple(
    f"/apis/custom.metrics.k8s.io/{version}/namespaces/{EDGE_NAMESPACE}/{tail}"
    for version in ("v1beta1", "v1beta2")
    for metric in catalog.NAMES
    for tail in (
        *(f"pods/*/{metric}?labelSelector={selector}" for selector in _EDGE_SELECTORS),
        *(f"pods/{pod}/{metric}" for pod in EDGE_PODS),
        *(
            f"deployments.apps/{deployment}/{metric}{selector}"
            for deployment in EDGE_DEPLOYMENTS
            for selector in _with_slo(metric, ("",))
        ),
        f"metrics/{metric}",
    )
) + tuple(
    f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{EDGE_NAMESPACE}/{metric}{selector}"
    for metric in catalog.NAMES
    for selector in _with_slo(
        metric, ("", "?labelSelector=deployment%3Dmodel", "?labelSelector=deployment")
    )
)


# -- the tests -------------------------------------------------------------------------------


def explore(
    fuzz: ThreadedAdapter,
    requests: int,
    strategy: st.SearchStrategy[Any],
    to_request: Callable[[Any], Request],
    check: Callable[[Sequence[Answer]], None],
) -> None:
    """Send ``requests`` generated requests, ``BATCH`` to a Hypothesis example, each batch
    checked by ``check``; fail unless all of them were sent."""

    @fuzz_settings(examples=requests // BATCH)
    @given(batches(strategy))
    def run(batch: list[Any]) -> None:
        check(fuzz.send([to_request(item) for item in batch]))

    sent, cpu, loop_cpu = fuzz.sent, time.process_time(), fuzz.loop_cpu_seconds
    run()
    sent = fuzz.sent - sent
    assert sent >= requests, f"Hypothesis ran fewer examples than asked: {sent} requests"
    print(
        f"{sent} requests, {(time.process_time() - cpu) / sent * 1e3:.2f} ms CPU each"
        f" ({(fuzz.loop_cpu_seconds - loop_cpu) / sent * 1e3:.2f} ms of them serving)"
    )


def check_query(answers: Sequence[Answer]) -> None:
    """No 5xx, no store change; an API error is a ``Status`` document."""
    for answer in answers:
        assert answer.status < 500, answer.fail("server error")
        assert not answer.store_changed, answer.fail("a query changed the store")
        if answer.headers.get("content-type", "").startswith("application/json"):
            document = json.loads(answer.body)  # hand-built answers must still be JSON
            if answer.status != 200:
                assert document["kind"] == "Status", answer.fail("not a Status")
        else:
            assert not answer.request.target.startswith("/apis"), answer.fail("not JSON")


def test_nasty_push_bodies(fuzz: ThreadedAdapter) -> None:
    check_push(fuzz.send([push(body) for body in NASTY_BODIES]))


def test_arbitrary_push_bodies(fuzz: ThreadedAdapter) -> None:
    explore(fuzz, 2500, arbitrary_bodies, push, check_push)


def test_mutated_push_bodies(fuzz: ThreadedAdapter) -> None:
    explore(fuzz, 3000, mutated_bodies, push, check_push)


def test_arbitrary_push_headers(fuzz: ThreadedAdapter) -> None:
    body = json.dumps(_valid_body(seq=10**7)).encode()
    explore(fuzz, 500, push_headers, lambda headers: push(body, headers), check_push)


def test_arbitrary_urls_and_selectors(fuzz: ThreadedAdapter) -> None:
    explore(fuzz, 3500, query_urls, lambda url: Request(url[0], url[1], {}), check_query)


def check_served_values(answers: Sequence[Answer]) -> None:
    """Every answer is a value list with a finite Quantity per item, or a 404 saying why."""
    check_query(answers)
    for answer in answers:
        assert answer.status in (200, 404), answer.fail("neither values nor not found")
        if answer.status == 200:
            for item in json.loads(answer.body)["items"]:
                assert quantity.parse_quantity(item["value"]).is_finite(), answer.fail("value")


def test_valid_edge_reports_then_queries(fuzz: ThreadedAdapter) -> None:
    """Contract-valid reports at every limit are accepted, and every query over them answers."""

    def accepted(answers: Sequence[Answer]) -> None:
        for answer in answers:
            assert answer.status == 200, answer.fail("a valid report was refused")
            assert json.loads(answer.body) == {"accepted": True}, answer.fail("not applied")

    store = fuzz.server.state.store

    async def forget_edge_pods() -> None:
        for record in list(store.pods(EDGE_NAMESPACE)):
            store.forget(record.pod)

    try:
        explore(fuzz, 400, edge_reports, push, accepted)
        explore(
            fuzz,
            400,
            st.sampled_from(EDGE_QUERIES),
            lambda target: Request("GET", target, {}),
            check_served_values,
        )
    finally:
        fuzz.on_loop(forget_edge_pods)  # their 1,728-bin windows would slow every fingerprint


def test_unparsable_http_is_refused_without_an_error_in_the_log(
    threaded: ThreadedAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    unparsable = [
        Request("GET", "/apis/" + "a" * 9000, {}),  # a request line over aiohttp's 8,190 bytes
        Request("GET", "?labelSelector=a", {}),  # a target that is not a path
        Request("GET", "/healthz", {f"X-Header-{i}": "x" for i in range(200)}),  # > 128 headers
    ]
    statuses = []
    with caplog.at_level(logging.INFO):
        for request in unparsable:
            statuses += [answer.status for answer in threaded.send([request])]
            threaded.on_loop(threaded.client.close)  # aiohttp closes it without saying so
    assert statuses == [400, 400, 400]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    refused = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(refused) == 3
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in refused)
    assert all("Error handling request" in r.getMessage() for r in refused)
