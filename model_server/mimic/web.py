"""The aiohttp side of a mimic: note how each inference request ended, serve the surface.

``recording(recorder)`` is a middleware: for the inference routes it counts the arrival, times
the request and hands the ``Answer`` (outcome, status, route, sizes, and what serving took, which
the handler leaves in ``request[OUTCOME]``) to the recorder. ``metrics_response`` writes the
surface; a single-process ``prometheus_client`` server (vLLM) also writes the client's default
process, platform and GC families, as its global registry does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    generate_latest,
)

from model_server.mimic import exposition
from model_server.mimic.recorder import Answer, Gauges, Recorder, Served

__all__ = ["INFERENCE_ROUTES", "OUTCOME", "metrics_response", "recording"]

OUTCOME: Final = web.RequestKey("mimic_outcome", tuple)
"""``(kind, Served | None)`` left by an inference handler for the recording middleware."""
INFERENCE_ROUTES: Final = frozenset({"/v2/models/{name}/infer", "/v1/completions"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _kind_of(status: int) -> str:
    """The outcome of a request whose handler did not say (it raised or was not reached)."""
    if status == 404:
        return "not_found"
    if status < 500:
        return "bad_request" if status >= 400 else "ok"
    return "error"


def recording(
    recorder: Recorder,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A middleware feeding ``recorder`` with every inference request's arrival and answer."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else ""
        if route not in INFERENCE_ROUTES:
            return await handler(request)
        recorder.arrive()
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _answer(recorder, request, route, exc.status, len(exc.body or b""), started)
            raise
        _answer(recorder, request, route, response.status, response.content_length or 0, started)
        return response

    return record


def _answer(
    recorder: Recorder,
    request: web.Request,
    route: str,
    status: int,
    response_bytes: int,
    started: float,
) -> None:
    kind, served = request.get(OUTCOME, (_kind_of(status), None))
    if kind == "ok" and not isinstance(served, Served):
        kind = "error"  # a handler answered 2xx without saying what serving took: a bug
    recorder.answer(
        Answer(
            kind=kind,
            status=status,
            method=request.method,
            handler=route,
            seconds=time.perf_counter() - started,
            request_bytes=request.content_length or 0,
            response_bytes=response_bytes,
            served=served if kind == "ok" else None,
        )
    )


def metrics_response(recorder: Recorder, gauges: Gauges) -> web.Response:
    """The surface as a scrape of the real server would get it."""
    library = recorder.surface.library
    text = exposition.render(recorder.snapshot(gauges))
    if library == "prometheus_client":
        text = _default_collectors() + text
    return web.Response(
        body=text.encode(), headers={"Content-Type": exposition.CONTENT_TYPE[library]}
    )


class _Defaults:
    """prometheus_client's default collectors, which its global registry holds first."""

    def collect(self) -> list:
        return [
            *PROCESS_COLLECTOR.collect(),
            *PLATFORM_COLLECTOR.collect(),
            *GC_COLLECTOR.collect(),
        ]


def _default_collectors() -> str:
    return generate_latest(_Defaults()).decode()  # type: ignore[arg-type]
