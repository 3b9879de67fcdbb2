"""A Service-like load balancer in front of a Deployment's ready pods.

Requests to the balancer go to the ready, non-terminating pod with the fewest requests in flight
(ties broken round-robin), the way a Service with least-connection balancing spreads traffic. A
pod leaves the endpoints as soon as it is terminating or unready; with no endpoint the balancer
answers 503 with ``Retry-After``, as a Service without endpoints refuses connections.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Retry-After")


class Balancer:
    """Forwards every request to one of ``endpoints()`` (base URLs)."""

    def __init__(self, endpoints: Callable[[], list[str]]) -> None:
        self._endpoints = endpoints
        self._in_flight: dict[str, int] = {}
        self._turn = itertools.count()
        self._session: aiohttp.ClientSession | None = None

    def _pick(self, endpoints: list[str]) -> str:
        fewest = min(self._in_flight.get(e, 0) for e in endpoints)
        tied = [e for e in endpoints if self._in_flight.get(e, 0) == fewest]
        return tied[next(self._turn) % len(tied)]

    async def forward(self, request: web.Request) -> web.Response:
        endpoints = self._endpoints()
        if not endpoints:
            return web.Response(
                status=503,
                body=json.dumps({"error": "no ready endpoints"}),
                content_type="application/json",
                headers={"Retry-After": "1"},
            )
        target = self._pick(endpoints)
        self._in_flight[target] = self._in_flight.get(target, 0) + 1
        assert self._session is not None
        try:
            async with self._session.request(
                request.method,
                target + request.path_qs,
                data=await request.read(),
                headers={"Content-Type": request.headers.get("Content-Type", "")},
            ) as answer:
                body = await answer.read()
                headers = {
                    h: answer.headers[h] for h in FORWARDED_RESPONSE_HEADERS if h in answer.headers
                }
                return web.Response(status=answer.status, body=body, headers=headers)
        except aiohttp.ClientError as error:
            return web.Response(
                status=502,
                body=json.dumps({"error": f"endpoint {target} failed: {error}"}),
                content_type="application/json",
            )
        finally:
            self._in_flight[target] -= 1
            if not self._in_flight[target]:
                del self._in_flight[target]

    async def _session_context(self, app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            self._session = session
            yield

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.cleanup_ctx.append(self._session_context)
        return app
