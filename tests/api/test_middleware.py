"""The request middleware over real TLS: failures answered as ``Status`` documents, the request
deadline, and one access line and one metrics observation for every request, failed or not."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl

import pytest
from aiohttp import web

from adapter.client import PodIdentity
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


async def test_every_request_has_one_access_line_and_one_observation(
    adapter_server: RunningAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapter.access")
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
    user = lines[3][3]
    assert user != "-", "a query with a client certificate was logged without its user"
    assert lines == [
        ("POST", "/push/v1", 200, "-"),
        ("POST", "/push/v1", 415, "-"),
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
    raised: web.HTTPException,
    status: int,
    reason: str | None,
) -> None:
    """An error (400 and above) becomes a ``Status``; anything below is aiohttp's to answer."""

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


async def test_a_request_past_its_timeout_gets_a_504_status_and_its_access_line(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapter.access")
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
        assert access_lines(caplog) == [("POST", "/push/v1", 504, "-")]
        assert requests_counted(adapter, "push", 504) == 1
        assert (await adapter.push(POD, 1)).status == 200, "the server stopped answering"


async def test_a_cancellation_that_is_not_the_deadline_propagates(
    adapter_server: RunningAdapter, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled otherwise (the server stopping), a request gets no 504: the connection
    closes without an answer, and the access line is still written."""
    caplog.set_level(logging.INFO, logger="adapter.access")
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
    assert [line[:2] for line in access_lines(caplog)] == [("POST", "/push/v1")]
    assert requests_counted(adapter_server, "push", 504) == 0
