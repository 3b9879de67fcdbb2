"""The request middleware over real TLS: failures answered as ``Status`` documents, the request
deadline, one metrics observation for every request, failed or not, and one access line for
every request but a push (pushes are counted, and logged only when refused, rate-limited)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
import time

import pytest
from aiohttp import web

from adapter.client import PodIdentity
from adapter.config import PushConfig
from tests.api.conftest import TOKEN, RunningAdapter, serve_adapter
from tests.conftest import Pki

CUSTOM_QUERY = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/inference_queue_depth"
POD = PodIdentity("ml", "model-7d4b9c-aaaaa", "uid-a", {"app": "model"}, "model")
ACCESS_LINE = re.compile(r"(\S+) (\S+) (\d{3}) \d+\.\dms (\S+)")


def access_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, int, str]]:
    """(method, path, status, user) of each access line logged so far."""
    lines = []
    for record in caplog.records:
        if record.name == "adapter.access":
            match = ACCESS_LINE.fullmatch(record.getMessage())
            assert match, record.getMessage()
            method, path, status, user = match.groups()
            lines.append((method, path, int(status), user))
    return lines


def requests_counted(adapter: RunningAdapter, route: str, code: int) -> float:
    registry = adapter.state.telemetry.registry
    labels = {"route": route, "code": str(code)}
    return registry.get_sample_value("adapter_requests_total", labels) or 0.0


def pushes_counted(adapter: RunningAdapter, result: str, reason: str) -> float:
    registry = adapter.state.telemetry.registry
    labels = {"result": result, "reason": reason}
    return registry.get_sample_value("adapter_pushes_total", labels) or 0.0


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "adapter.push"]


async def test_every_request_but_a_push_has_one_access_line_and_all_one_observation(
    adapter_server: RunningAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapter")
    url = adapter_server.url
    assert (await adapter_server.push(POD, 1)).status == 200
    async with adapter_server.anonymous.post(
        f"{url}/push/v1", data=b"{}", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        assert response.status == 415
    async with adapter_server.anonymous.get(f"{url}{CUSTOM_QUERY}") as response:
        assert response.status == 401
        assert (await response.json())["reason"] == "Unauthorized"
    async with adapter_server.reader.delete(f"{url}{CUSTOM_QUERY}") as response:
        assert response.status == 405
    status, body, _ = await adapter_server.get("/nowhere?x=1")
    assert (status, body["reason"]) == (404, "NotFound")
    async with adapter_server.anonymous.get(f"{url}/healthz") as response:
        assert response.status == 200

    lines = access_lines(caplog)
    user = lines[1][3]
    assert user != "-", "a query with a client certificate was logged without its user"
    assert lines == [
        ("GET", CUSTOM_QUERY, 401, "-"),
        ("DELETE", CUSTOM_QUERY, 405, user),
        ("GET", "/nowhere?x=1", 404, user),
        ("GET", "/healthz", 200, "-"),
    ]
    for route, code in [
        ("push", 200),
        ("push", 415),
        ("custom_metric", 401),
        ("unmatched", 405),
        ("unmatched", 404),
        ("healthz", 200),
    ]:
        assert requests_counted(adapter_server, route, code) == 1, (route, code)
    assert pushes_counted(adapter_server, "accepted", "accepted") == 1
    assert pushes_counted(adapter_server, "rejected", "UnsupportedMediaType") == 1
    [refused] = refusal_lines(caplog)
    assert refused.startswith("push from client 127.0.0.1 refused: 415 UnsupportedMediaType: ")


async def test_refused_pushes_are_logged_once_a_minute_per_reason_and_pod(
    adapter_server: RunningAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapter")
    other = PodIdentity("ml", "model-7d4b9c-bbbbb", "uid-b", {"app": "model"}, "model")
    for seq in range(1, 4):
        assert (
            await adapter_server.push(POD, seq, gauges={"inference_queue_depth": -1})
        ).status == 422
    assert (await adapter_server.push(other, 1, gauges={"inference_queue_depth": -1})).status == 422
    assert (await adapter_server.push(POD, 4)).status == 200
    assert access_lines(caplog) == []
    assert refusal_lines(caplog) == [
        f"push from ml/{name} refused: 422 Invalid: gauges.inference_queue_depth must be finite,"
        " at least 0 and at most 1e+15"
        for name in (POD.name, other.name)
    ]
    assert pushes_counted(adapter_server, "rejected", "Invalid") == 4
    # the minute ends: the refusals that were only counted get their closing line
    assert adapter_server.state.rejections.expired(time.monotonic() + 61) == [
        ("Invalid", f"ml/{POD.name}", 2)
    ]


async def test_log_pushes_writes_an_access_line_for_every_push(pki: Pki, caplog) -> None:
    caplog.set_level(logging.INFO, logger="adapter.access")
    async with serve_adapter(pki, push=PushConfig(log_pushes=True)) as adapter:
        assert (await adapter.push(POD, 1)).status == 200
        assert (await adapter.push(POD, 1)).status == 200  # a duplicate
    assert access_lines(caplog) == [("POST", "/push/v1", 200, "-")] * 2


async def test_an_unexpected_error_is_a_500_status_logged_once(
    adapter_server: RunningAdapter,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("the provider broke")

    monkeypatch.setattr(adapter_server.state.provider, "get_metric_by_selector", broken)
    caplog.set_level(logging.INFO)
    status, body, content_type = await adapter_server.get(CUSTOM_QUERY)
    assert (status, content_type) == (500, "application/json")
    assert (body["kind"], body["reason"]) == ("Status", "InternalError")
    assert "broke" not in body["message"], "the answer showed the exception"
    problems = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(problems) == 1
    assert problems[0].exc_info is not None and problems[0].exc_info[0] is RuntimeError
    assert access_lines(caplog)[-1][:3] == ("GET", CUSTOM_QUERY, 500)


@pytest.mark.parametrize(
    ("raised", "status", "reason"),
    [
        (web.HTTPServiceUnavailable(), 503, "ServiceUnavailable"),
        (web.HTTPFound("/elsewhere"), 302, None),
    ],
)
async def test_http_exceptions_from_handlers(
    adapter_server: RunningAdapter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    raised: web.HTTPException,
    status: int,
    reason: str | None,
) -> None:
    """An error (400 and above) becomes a ``Status``; anything below is aiohttp's to answer,
    logged and counted with its own status."""
    caplog.set_level(logging.INFO, logger="adapter.access")

    async def raising(*args: object) -> None:
        raise raised

    monkeypatch.setattr(adapter_server.state.provider, "get_metric_by_selector", raising)
    async with adapter_server.reader.get(
        f"{adapter_server.url}{CUSTOM_QUERY}", allow_redirects=False
    ) as response:
        assert response.status == status
        if reason is None:
            assert response.headers["Location"] == "/elsewhere"
        else:
            assert (await response.json())["reason"] == reason
    assert access_lines(caplog)[-1][:3] == ("GET", CUSTOM_QUERY, status)
    assert requests_counted(adapter_server, "custom_metric", status) == 1
    assert requests_counted(adapter_server, "custom_metric", 500) == 0


async def partial_push(pki: Pki, url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sent a push's head and the start of its body, then nothing more."""
    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    writer.write(
        b"POST /push/v1 HTTP/1.1\r\nHost: adapter\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 4096\r\n\r\n{"
    )
    await writer.drain()
    return reader, writer


async def test_a_push_past_its_timeout_gets_a_504_status_and_is_counted(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapter")
    async with serve_adapter(pki, request_timeout_seconds=0.2) as adapter:
        reader, writer = await partial_push(pki, adapter.url)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE)
            assert length, head
            body = await reader.readexactly(int(length[1]))
        finally:
            writer.close()
        assert head.startswith(b"HTTP/1.1 504 "), head
        status = json.loads(body)
        assert (status["kind"], status["code"], status["reason"]) == ("Status", 504, "Timeout")
        assert status["message"].endswith("within the allotted timeout of 0.2s")
        assert refusal_lines(caplog) == [
            "push from client 127.0.0.1 refused: 504 Timeout: the request did not complete"
            " within the allotted timeout of 0.2s"
        ]
        assert requests_counted(adapter, "push", 504) == 1
        assert pushes_counted(adapter, "rejected", "Timeout") == 1
        assert (await adapter.push(POD, 1)).status == 200, "the server stopped answering"


async def test_a_client_that_hangs_up_is_a_499_not_a_500(
    adapter_server: RunningAdapter, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _reader, writer = await partial_push(pki, adapter_server.url)
    await asyncio.sleep(0.2)  # the handler waits for the rest of the body
    assert writer.transport is not None
    writer.transport.abort()
    for _ in range(500):
        if requests_counted(adapter_server, "push", 499):
            break
        await asyncio.sleep(0.01)
    assert requests_counted(adapter_server, "push", 499) == 1
    assert requests_counted(adapter_server, "push", 500) == 0
    assert pushes_counted(adapter_server, "rejected", "ClientClosedRequest") == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_cancellation_that_is_not_the_deadline_propagates(
    adapter_server: RunningAdapter, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled otherwise (the server stopping), a request gets no 504: the connection
    closes without an answer, and it is counted and logged as a 499."""
    caplog.set_level(logging.INFO, logger="adapter")
    reader, writer = await partial_push(pki, adapter_server.url)
    handling = []
    while not handling:
        await asyncio.sleep(0.01)
        handling = [
            task
            for task in asyncio.all_tasks()
            if task.get_coro().__qualname__ == "RequestHandler._handle_request"
        ]
    [task] = handling
    task.cancel()
    with contextlib.suppress(ConnectionError):
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer == b""
    writer.close()
    assert refusal_lines(caplog) == [
        "push from client 127.0.0.1 refused: 499 ClientClosedRequest: the client went away"
        " before the answer"
    ]
    assert requests_counted(adapter_server, "push", 499) == 1
    assert requests_counted(adapter_server, "push", 504) == 0
