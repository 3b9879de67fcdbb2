"""Credentials that are odd on the wire: a lower-case scheme, bytes that are not UTF-8, header
lines aiohttp cannot parse, a certificate whose CN holds a newline. Each gets a clear answer,
and neither a token nor a forged line reaches the log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter import logs
from adapter.client import PodIdentity, encode_report
from adapter.sketch import LatencySketch
from tests.api.conftest import TOKEN, RunningAdapter, serve_adapter
from tests.api.test_client_certificates import (
    DISCOVERY,
    port_of,
    presenting,
    standalone_ca,
)
from tests.cluster.pki import issue
from tests.conftest import Pki
from tests.rawhttp import RawHttp, Request, get_in_session

POD = PodIdentity("ml", "model-7d4b9c-aaaaa", "uid-a", {"app": "model"}, "model")
SECRET = "s3cr3t-push-token-that-must-not-be-logged"


def push_body(seq: int = 1) -> bytes:
    report = encode_report(POD, seq, {}, LatencySketch.empty(), 1_800_000_000.0)
    return json.dumps(report).encode()


@pytest.fixture
def text_log() -> Iterator[io.StringIO]:
    """The adapter's text log format, configured as ``__main__`` does, into a string."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure_logging("text", stream=stream)
    try:
        yield stream
    finally:
        logs.flush_pending()
        root.handlers[:], root.level = saved
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = True


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
async def test_the_bearer_scheme_is_case_insensitive(
    adapter_server: RunningAdapter, scheme: str
) -> None:
    headers = {"Authorization": f"{scheme} {TOKEN}", "Content-Type": "application/json"}
    async with adapter_server.anonymous.post(
        f"{adapter_server.url}/push/v1", data=push_body(), headers=headers
    ) as response:
        assert response.status == 200, await response.text()


async def test_a_token_that_is_not_utf8_is_a_401_not_a_500(
    pki: Pki, adapter_server: RunningAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    client = RawHttp(port_of(adapter_server), pki.client_context(with_client_cert=False))
    # RawHttp writes headers as latin-1: these two characters go out as the bytes ff fe.
    headers = {"Authorization": f"Bearer {TOKEN}\xff\xfe", "Content-Type": "application/json"}
    status, _, body = await client.exchange(Request("POST", "/push/v1", headers, push_body()))
    await client.close()
    assert status == 401, body
    assert len(adapter_server.state.store) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {SECRET}\r",  # a token file with CRLF endings, read by a client stripping LF
        f"Bearer {SECRET}\x01",  # a control character
        f"Bearer {SECRET}\nX-Next: \x00",  # a bare LF, then garbage
        f"Bearer {SECRET}" + "x" * 9000,  # longer than aiohttp's 8,190 bytes a line
    ],
)
async def test_a_malformed_authorization_line_keeps_the_token_out_of_the_log(
    pki: Pki, adapter_server: RunningAdapter, text_log: io.StringIO, authorization: str
) -> None:
    client = RawHttp(port_of(adapter_server), pki.client_context(with_client_cert=False))
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    status, _, _ = await client.exchange(Request("POST", "/push/v1", headers, push_body()))
    await client.close()
    assert status == 400
    logs.flush_pending()
    log = text_log.getvalue()
    assert "Error handling request" in log  # the refusal is logged...
    assert SECRET not in log  # ...without the token
    assert SECRET[:8] not in log


async def test_a_newline_in_a_common_name_cannot_forge_a_log_line(
    pki: Pki, tmp_path: Path, text_log: io.StringIO
) -> None:
    forged = "2026-01-01 00:00:00,000 INFO adapter.access GET / 200"  # a CN has 64 at most
    sneaky = issue(standalone_ca(pki), tmp_path, "sneaky", f"mallory\n{forged}")
    async with serve_adapter(pki) as server:
        answer = await asyncio.to_thread(
            get_in_session, port_of(server), presenting(pki, sneaky), DISCOVERY
        )
    assert answer.status == 200
    logs.flush_pending()
    lines = text_log.getvalue().splitlines()
    assert not [line for line in lines if line.startswith(forged)]
    access = [line for line in lines if " adapter.access " in line]
    assert len(access) == 1
    assert access[0].endswith(f"mallory\\n{forged}")


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Length": "0", "Transfer-Encoding": f"chunked, {SECRET}"},
        {"Transfer-Encoding": "chunked", "Content-Length": "0", "X-Token": SECRET},
    ],
)
async def test_a_parse_error_whose_reason_has_an_apostrophe_keeps_the_request_out_of_the_log(
    pki: Pki, adapter_server: RunningAdapter, text_log: io.StringIO, headers: dict[str, str]
) -> None:
    """llhttp's "Transfer-Encoding can't be present with Content-Length": the apostrophe of
    its reason is no quote of the request line that follows."""
    client = RawHttp(port_of(adapter_server), pki.client_context(with_client_cert=False))
    status, _, _ = await client.exchange(Request("GET", "/healthz", headers))
    await client.close()
    assert status == 400
    logs.flush_pending()
    log = text_log.getvalue()
    assert "can't be present with" in log  # the refusal is logged, its reason whole...
    assert SECRET[:8] not in log  # ...without the request text
    assert "chunked" not in log
